#!/usr/bin/env python3
"""Tests scripts/check_layers.py: it passes on the real tree, and on a copy of the tree with one
deliberately broken include it fails (exit 1) naming the file, the line and the include.

  tests/scripts/check_layers_test.py [unittest options]     (ctest: LayerRulesCheckerTest)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECKER = os.path.join(SOURCE_DIR, "scripts", "check_layers.py")
SCANNED_DIRS = ["src", "include", "tools", "bench"]
CXX_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".cxx", ".inc", ".ipp")


def run_checker(root):
    return subprocess.run([sys.executable, CHECKER, root], capture_output=True, text=True,
                          check=False)


class RealTreeTest(unittest.TestCase):
    def test_real_tree_passes(self):
        r = run_checker(SOURCE_DIR)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("follow the layer rules", r.stdout)

    def test_missing_root_is_a_usage_error(self):
        with tempfile.TemporaryDirectory() as empty:
            self.assertEqual(run_checker(empty).returncode, 2)


class BrokenCopyTest(unittest.TestCase):
    """Each test breaks one rule in a fresh copy of the C++ sources."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        # The C++ sources only (what the checker reads).
        skip = lambda d, names: [n for n in names if n in ("node_modules", ".git") or (
            os.path.isfile(os.path.join(d, n)) and not n.endswith(CXX_SUFFIXES))]
        for d in SCANNED_DIRS:
            src = os.path.join(SOURCE_DIR, d)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(self.root, d), ignore=skip)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def add_include(self, rel, include):
        """Appends `#include "include"` to `rel`; returns its line number."""
        path = os.path.join(self.root, rel)
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        lines.append(f'#include "{include}"')
        self.write(rel, "\n".join(lines) + "\n")
        return len(lines)

    def assert_fails_naming(self, rel, line, include, *words):
        r = run_checker(self.root)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f'{rel}:{line}: #include "{include}"', r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        # Only the broken include is reported.
        self.assertEqual(len([l for l in r.stderr.splitlines() if l.startswith(rel)]), 1, r.stderr)

    def test_unmodified_copy_passes(self):
        r = run_checker(self.root)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_core_header_including_model(self):
        self.write("src/core/x.h", '#pragma once\n\n#include "model/model.h"\n')
        self.assert_fails_naming("src/core/x.h", 3, "model/model.h", "upward include",
                                 "core may not include model")

    def test_public_header_including_runtime(self):
        line = self.add_include("include/gemma_local/engine.h", "runtime/kv_cache.h")
        self.assert_fails_naming("include/gemma_local/engine.h", line, "runtime/kv_cache.h",
                                 "public header may include only other public headers")

    def test_public_header_including_a_public_header_implemented_above_it(self):
        line = self.add_include("include/gemma_local/status.h", "gemma_local/engine.h")
        self.assert_fails_naming("include/gemma_local/status.h", line, "gemma_local/engine.h",
                                 "implemented in core includes one implemented in runtime")

    def test_core_including_a_public_header_implemented_above_it(self):
        line = self.add_include("src/core/dtype.h", "gemma_local/engine.h")
        self.assert_fails_naming("src/core/dtype.h", line, "gemma_local/engine.h", "upward")

    def test_model_including_backends(self):
        line = self.add_include("src/model/model.h", "backends/cpu/quant_matmul.h")
        self.assert_fails_naming("src/model/model.h", line, "backends/cpu/quant_matmul.h",
                                 "nothing but backends/ includes backends/")

    def test_ops_including_backends(self):
        line = self.add_include("src/ops/ops.h", "backends/cpu/quant_matmul.h")
        self.assert_fails_naming("src/ops/ops.h", line, "backends/cpu/quant_matmul.h",
                                 "ops may not include backends")

    def test_relative_upward_include(self):
        self.write("src/formats/y.cc", '#include "../runtime/sampler.h"\n')
        self.assert_fails_naming("src/formats/y.cc", 1, "../runtime/sampler.h",
                                 "formats may not include runtime")

    def test_cli_including_internals(self):
        line = self.add_include("tools/cli/main.cc", "model/checkpoint.h")
        self.assert_fails_naming("tools/cli/main.cc", line, "model/checkpoint.h",
                                 "front ends call the public API")

    def test_testgen_only_from_dev_command(self):
        line = self.add_include("tools/cli/main.cc", "testgen/make_test_model.h")
        self.assert_fails_naming("tools/cli/main.cc", line, "testgen/make_test_model.h",
                                 "cli may not include testgen")

    def test_bench_including_internals(self):
        self.write("bench/z_bench.cc", '#include "gemma_local/engine.h"\n#include "core/utf8.h"\n')
        self.assert_fails_naming("bench/z_bench.cc", 2, "core/utf8.h", "bench may not include core")

    def test_unknown_directory(self):
        self.write("src/newlayer/a.cc", '#include "core/dtype.h"\n')
        r = run_checker(self.root)
        self.assertEqual(r.returncode, 1)
        self.assertIn("src/newlayer/a.cc:1: belongs to no layer", r.stderr)

    def test_unresolvable_quoted_include(self):
        line = self.add_include("src/text/tokenizer.cc", "no/such_header.h")
        self.assert_fails_naming("src/text/tokenizer.cc", line, "no/such_header.h", "names no file")

    def test_allowed_includes_pass(self):
        # Downward and skipping includes, a backend including ops, system headers.
        self.add_include("src/runtime/sampler.cc", "ops/batch.h")
        self.add_include("src/backends/cpu/matmul.cc", "ops/reference/ref_ops.h")
        self.add_include("src/text/tokenizer.cc", "gemma_local/model_info.h")
        self.write("src/core/w.cc", '#include <vector>\n#include "gemma_local/status.h"\n')
        r = run_checker(self.root)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
