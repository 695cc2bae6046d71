#!/usr/bin/env python3
"""Checks every project #include in src/, include/, tools/ and bench/ against the layer rules.

The layers are those of shared/design/layout.md: arrows only point down. A file may include
headers of its own layer and of the layers its row below lists; anything else is an upward (or
sideways) include and fails. Public headers (include/gemma_local/) may include only other public
headers and system or third-party headers: the public API exposes no internal type.

  scripts/check_layers.py [--quiet] [ROOT]

ROOT is the source tree to check (default: the tree this script belongs to). Exit status 0 when
every include follows the rules; 1 when one does not, with one line per violation on stderr:
`FILE:LINE: #include "X": <the rule broken>`; 2 for a usage error. Python 3 standard library only;
scripts/test.sh runs it before building and ctest runs it as the LayerRules test.
"""

import argparse
import os
import re
import sys

# -------------------------------------------------------------------------------------------------
# The rules. Rows bottom to top: layer -> (directories it owns, relative to ROOT; the other layers
# its files may include). A layer may skip the ones between (runtime includes ops/batch.h).
LAYERS = {
    "core": (["src/core"], []),
    "formats": (["src/formats"], ["core"]),
    # ops/ops.h is the backend-neutral op API; ops/reference holds the scalar oracles.
    "ops": (["src/ops"], ["formats", "core"]),
    # The CPU backend implements ops/ops.h (and falls back to the oracles), so it sits below ops for
    # linking but includes ops; nothing but backends includes backends (no row lists it).
    "backends": (["src/backends"], ["ops", "formats", "core"]),
    "model": (["src/model"], ["ops", "formats", "core"]),
    "text": (["src/text"], ["model", "ops", "formats", "core"]),
    # Token masks are computed over the tokenizer's vocabulary: constrain may use text, not the
    # reverse.
    "constrain": (["src/constrain"], ["text", "model", "ops", "formats", "core"]),
    "runtime": (["src/runtime"], ["constrain", "text", "model", "ops", "formats", "core"]),
    # The public API: its headers may include only each other (see PUBLIC_HEADER_HOME).
    "api": (["include/gemma_local"], []),
    # Front ends: the public API and their own headers only.
    "server": (["src/server"], ["api"]),
    "cli": (["tools/cli"], ["api"]),
    # Benchmarks are programs over the public API; they may generate test models.
    "bench": (["bench"], ["api", "testgen"]),
    # The random-weight test-model generator: a developer tool beside the layers that writes
    # checkpoints from the internals (its headers expose HParams and DType).
    "testgen": (["tools/testgen"], ["api", "text", "model", "ops", "formats", "core"]),
}

# Single files allowed one more layer than their row gives, and why.
FILE_EXCEPTIONS = {
    # `gemma-local dev make-model` drives the test-model generator (a developer command).
    "tools/cli/dev_command.cc": ["testgen"],
}

# Each public header is implemented in one layer (its "home"): internal files may include it from
# that layer up, and a public header may include another only from its own home layer down.
# Public headers not listed here belong to runtime (the engine), the layer just below the API.
PUBLIC_HEADER_HOME = {
    "status.h": "core",
    "system_memory.h": "core",
    "model_info.h": "model",
    "quantize.h": "model",
    "chat_output.h": "text",
    "chat_template.h": "text",
    "tokenizer.h": "text",
    "constraint.h": "constrain",
    "rules.h": "constrain",
    "sampling.h": "runtime",
    "engine.h": "runtime",
    "server.h": "server",
}
DEFAULT_PUBLIC_HOME = "runtime"

# Why a layer's includes are limited, added to the messages for its files.
SOURCE_NOTES = {
    "cli": "front ends call the public API (include/gemma_local/) only",
    "server": "front ends call the public API (include/gemma_local/) only",
    "bench": "benchmarks measure through the public API (include/gemma_local/)",
}
# Why a target layer is off limits, added to the message when it is.
TARGET_NOTES = {
    "backends": "nothing but backends/ includes backends/: callers go through ops/ops.h",
    "testgen": "the test-model generator is for tests and developer commands only",
    "cli": "tools/cli headers are the CLI's own",
}

SCANNED_DIRS = ["src", "include", "tools", "bench"]
# Where quoted includes are looked up after the including file's directory, as the build's -I
# flags do (src/ for the layers, include/ for the public API, tools/ for cli/ and testgen/).
INCLUDE_ROOTS = ["src", "include", "tools"]
CXX_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".cxx", ".inc", ".ipp")
PUBLIC_DIR = "include/gemma_local"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
ORDER = list(LAYERS)


def layer_of(rel):
    """The layer owning repository path `rel` (longest directory match), or None."""
    best, best_len = None, -1
    for name, (dirs, _) in LAYERS.items():
        for d in dirs:
            if (rel == d or rel.startswith(d + "/")) and len(d) > best_len:
                best, best_len = name, len(d)
    return best


def public_home(rel):
    return PUBLIC_HEADER_HOME.get(rel[len(PUBLIC_DIR) + 1:], DEFAULT_PUBLIC_HOME)


def describe_allowed(layer):
    allowed = LAYERS[layer][1]
    return ", ".join(allowed) if allowed else "nothing outside itself"


def resolve(root, including_rel, spelled, quoted):
    """The repository path an include names, or None (system/third-party, or not found)."""
    candidates = []
    if quoted:
        candidates.append(os.path.join(os.path.dirname(including_rel), spelled))
    candidates += [os.path.join(r, spelled) for r in INCLUDE_ROOTS]
    for c in candidates:
        rel = os.path.normpath(c).replace(os.sep, "/")
        if rel.startswith("../") or rel == "..":
            continue
        if os.path.isfile(os.path.join(root, rel)):
            return rel
    return None


def check_include(rel, layer, target):
    """The rule `rel` (in `layer`) breaks by including repository file `target`, or None."""
    target_layer = layer_of(target)
    if target_layer is None:
        return "includes a file that belongs to no layer (add its directory to LAYERS)"
    extra = FILE_EXCEPTIONS.get(rel, [])
    if target_layer == "api":
        home = public_home(target)
        if layer == "api":
            own = public_home(rel)
            # A front end's public header (server.h) may use the whole public API, as its code
            # does.
            if home == own or home in LAYERS[own][1] or "api" in LAYERS[own][1]:
                return None
            return (f"public header implemented in {own} includes one implemented in {home} "
                    f"(above it); see PUBLIC_HEADER_HOME")
        allowed = LAYERS[layer][1] + extra
        if "api" in allowed or home == layer or home in allowed:
            return None
        return (f"{layer} may not include public header {os.path.basename(target)}, which is "
                f"implemented in {home} (upward include; {layer} may include: "
                f"{describe_allowed(layer)})")
    if layer == "api":
        return ("a public header may include only other public headers (gemma_local/...) and "
                f"system or third-party headers, not internal ones ({target_layer})")
    if target_layer == layer or target_layer in LAYERS[layer][1] or target_layer in extra:
        return None
    direction = "upward include" if ORDER.index(target_layer) > ORDER.index(layer) else (
        "not a dependency of this layer")
    notes = [n for n in (SOURCE_NOTES.get(layer), TARGET_NOTES.get(target_layer)) if n]
    return (f"{layer} may not include {target_layer} ({direction}; {layer} may include: "
            f"{describe_allowed(layer)})" + "".join(f"; {n}" for n in notes))


def source_files(root):
    for top in SCANNED_DIRS:
        base = os.path.join(root, top)
        if not os.path.isdir(base):
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in ("node_modules", ".git"))
            for f in sorted(filenames):
                if f.endswith(CXX_SUFFIXES):
                    yield os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")


def check_tree(root):
    """(violations as "FILE:LINE: message" strings, number of files, number of includes)."""
    violations = []
    n_files = n_includes = 0
    for rel in source_files(root):
        n_files += 1
        layer = layer_of(rel)
        if layer is None:
            violations.append(f"{rel}:1: belongs to no layer: add its directory to LAYERS in "
                              "scripts/check_layers.py (and a library to src/CMakeLists.txt)")
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        for number, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            quoted, spelled = m.group(1) == '"', m.group(2)
            target = resolve(root, rel, spelled, quoted)
            if target is None:
                if quoted:
                    violations.append(
                        f'{rel}:{number}: #include "{spelled}": names no file beside the '
                        f"including file or under {', '.join(INCLUDE_ROOTS)}/ (project headers "
                        "are included by their path from one of those roots)")
                continue  # a system or third-party header
            n_includes += 1
            rule = check_include(rel, layer, target)
            if rule:
                violations.append(f'{rel}:{number}: #include "{spelled}": {rule}')
    return violations, n_files, n_includes


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?",
                        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="source tree to check (default: this script's tree)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    if not os.path.isdir(os.path.join(root, "src")):
        print(f"check_layers: {root} has no src/ directory", file=sys.stderr)
        return 2
    violations, n_files, n_includes = check_tree(root)
    for v in violations:
        print(v, file=sys.stderr)
    if violations:
        print(f"check_layers: {len(violations)} include(s) break the layer rules "
              "(rules: the table at the top of scripts/check_layers.py; shared/design/layout.md)",
              file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"check_layers: {n_includes} project includes in {n_files} files follow the layer "
              "rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
