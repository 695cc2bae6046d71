#!/usr/bin/env python3
"""An independent GGUF writer (Python standard library only) for tests.

It shares no code with gemma-local's C++ writer, so `gemma-local inspect` can be checked on files
the project did not write. Writes a tiny random-weight gemma3 or gemma4 GGUF (v3, llama.cpp's
key and tensor names) and prints, as JSON on stdout, the numbers inspect must report.

Usage: independent_gguf.py --arch gemma3|gemma4 --out FILE [--dtype f32|f16] [--seed N]
"""
import argparse
import json
import os
import random
import struct

T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML = {"f32": (0, "<%df", 4), "f16": (1, "<%de", 2)}


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def scalar(t, v):
    return {T_U32: "<I", T_I32: "<i", T_F32: "<f", T_BOOL: "<?"}.get(t) and struct.pack(
        {T_U32: "<I", T_I32: "<i", T_F32: "<f", T_BOOL: "<?"}[t], v) or gstr(v)


class Gguf:
    def __init__(self):
        self.kv, self.tensors = [], []

    def set(self, key, t, v):
        self.kv.append(gstr(key) + struct.pack("<I", t) + scalar(t, v))

    def array(self, key, t, values):
        body = struct.pack("<IQ", t, len(values)) + b"".join(scalar(t, x) for x in values)
        self.kv.append(gstr(key) + struct.pack("<I", T_ARR) + body)

    def tensor(self, name, ne, values, dtype):
        type_id, fmt, _ = GGML[dtype]
        self.tensors.append((name, ne, type_id, struct.pack(fmt % len(values), *values)))

    def write(self, path, align=32):
        head = b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)) + b"".join(self.kv)
        offset, data = 0, b""
        for name, ne, type_id, raw in self.tensors:
            head += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
            head += struct.pack("<IQ", type_id, offset)
            padded = raw + b"\0" * (-len(raw) % align)
            data += padded
            offset += len(padded)
        head += b"\0" * (-len(head) % align)
        with open(path, "wb") as f:
            f.write(head + data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=["gemma3", "gemma4"], default="gemma3")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    g4 = a.arch == "gemma4"
    A = a.arch + "."
    H, L, NH, NKV, D_SWA, FF, W, CTX = 48, 3, 4, 2, 16, 96, 16, 2048
    D_FULL = 32 if g4 else D_SWA
    pattern = [True, True, False]  # layer 2 is global in both families (gemma3: period 3)
    pieces = ["<pad>", "<eos>", "<bos>", "<unk>"] + ["<0x%02X>" % b for b in range(256)]
    pieces += ["\u2581"] + [chr(c) for c in range(97, 123)] + ["\u2581" + w for w in ("a", "the", "gemma")]
    types = [3, 3, 3, 2] + [6] * 256 + [1] * (len(pieces) - 260)
    V = len(pieces)

    f = Gguf()
    f.set("general.architecture", T_STR, a.arch)
    f.set(A + "context_length", T_U32, CTX)
    f.set(A + "embedding_length", T_U32, H)
    f.set(A + "block_count", T_U32, L)
    f.set(A + "feed_forward_length", T_U32, FF)
    f.set(A + "attention.head_count", T_U32, NH)
    f.set(A + "attention.head_count_kv", T_U32, NKV)
    f.set(A + "attention.key_length", T_U32, D_FULL)
    f.set(A + "attention.value_length", T_U32, D_FULL)
    f.set(A + "attention.layer_norm_rms_epsilon", T_F32, 1e-6)
    f.set(A + "rope.freq_base", T_F32, 1e6)
    f.set(A + "rope.freq_base_swa", T_F32, 1e4)
    f.set(A + "attention.sliding_window", T_U32, W)
    if g4:
        f.array(A + "attention.sliding_window_pattern", T_BOOL, pattern)
        f.set(A + "attention.key_length_swa", T_U32, D_SWA)
        f.set(A + "attention.value_length_swa", T_U32, D_SWA)
        f.set(A + "rope.dimension_count", T_U32, D_FULL)
        f.set(A + "rope.dimension_count_swa", T_U32, D_SWA)
        f.set(A + "attention.shared_kv_layers", T_U32, 0)
        f.set(A + "embedding_length_per_layer_input", T_U32, 0)
        f.set(A + "final_logit_softcapping", T_F32, 30.0)
    else:
        f.set(A + "attention.sliding_window_pattern", T_U32, 3)
    f.set("tokenizer.ggml.model", T_STR, "llama")
    f.array("tokenizer.ggml.tokens", T_STR, pieces)
    f.array("tokenizer.ggml.scores", T_F32, [0.0] * V)
    f.array("tokenizer.ggml.token_type", T_I32, types)
    f.set("tokenizer.ggml.bos_token_id", T_U32, 2)
    f.set("tokenizer.ggml.eos_token_id", T_U32, 1)

    n_params = 0
    counts = {}

    def tensor(name, ne):
        nonlocal n_params
        n = 1
        for d in ne:
            n *= d
        dtype = a.dtype if len(ne) > 1 else "f32"
        f.tensor(name, ne, [rnd.uniform(-0.1, 0.1) for _ in range(n)], dtype)
        if name != "rope_freqs.weight":
            n_params += n
            counts[dtype] = counts.get(dtype, 0) + 1

    tensor("token_embd.weight", [H, V])
    tensor("output_norm.weight", [H])
    for i in range(L):
        d = D_SWA if pattern[i] else D_FULL
        p = "blk.%d." % i
        for name, ne in (("attn_norm", [H]), ("attn_q", [H, NH * d]), ("attn_k", [H, NKV * d]),
                         ("attn_v", [H, NKV * d]), ("attn_output", [NH * d, H]), ("attn_q_norm", [d]),
                         ("attn_k_norm", [d]), ("post_attention_norm", [H]), ("ffn_norm", [H]),
                         ("ffn_gate", [H, FF]), ("ffn_up", [H, FF]), ("ffn_down", [FF, H]),
                         ("post_ffw_norm", [H])):
            tensor(p + name + ".weight", ne)
        if g4:
            tensor(p + "layer_output_scale.weight", [1])
    if g4:
        f.tensor("rope_freqs.weight", [D_FULL // 2], [1.0] * (D_FULL // 8) + [1e30] * (D_FULL // 2 - D_FULL // 8), "f32")
    f.write(a.out)

    kv_full = 2 * NKV * D_FULL * 2
    kv_swa = 2 * NKV * D_SWA * 2 * 2  # two sliding layers
    print(json.dumps({
        "architecture": a.arch, "n_layers": L, "hidden_size": H, "n_heads": NH, "n_kv_heads": NKV,
        "head_dim": D_SWA, "ffn_size": FF, "vocab_size": V, "sliding_window": W, "context_length": CTX,
        "n_params": n_params, "tensor_types": counts, "file_bytes": os.path.getsize(a.out),
        "has_tokenizer": True, "has_chat_template": False,
        "memory": {"kv_bytes_per_token": kv_full, "kv_bytes_per_token_sliding": kv_swa,
                   "kv_bytes_at_context_length": kv_full * CTX + kv_swa * W},
    }))


if __name__ == "__main__":
    main()
