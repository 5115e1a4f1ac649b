"""A random-weight tiny llama written as GGUF, so real engines can run with no download.

Under a JSON-schema grammar such a model writes schema-valid but meaningless JSON: what
the engine tests need, since the schema and the client, not the model, must guarantee a
usable plan. Layout (about 550 KB, loads in milliseconds in llama.cpp): architecture
`llama`, 2 blocks, n_embd 64, 4 heads and 4 KV heads, n_ff 128, every tensor F32, output
weights with a small std so logits are near uniform. Tokenizer: GPT-2 byte-level BPE
(`gpt2`, pre `gpt-2`) with all 256 byte tokens, merges that make the plan format's words
and JSON punctuation runs single tokens (so streams carry multi-character deltas, like a
real model's), and ChatML's control tokens (eos = `<|im_end|>`).

Needs the `gguf` package and numpy (the `engines` extra); imported only by the engine
tests, never by the project.
"""

from __future__ import annotations

from pathlib import Path

from game.rules.steps import STEP_TYPES

N_EMBD = 64
N_HEAD = 4
N_FF = 128
N_BLOCKS = 2
CONTEXT = 32768

CHATML = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
WORDS = (
    "plans",
    "agent",
    "id",
    "steps",
    "act",
    "target",
    *STEP_TYPES,
    '{"',
    '":',
    '":[',
    '":[[',
    '",',
    '","',
    ',"',
    '"}',
    '"},',
    '},{"',
    "}]",
    "}]}",
    "[[",
    '[["',
    ",[",
    ',["',
    ',[["',
    "]]",
    "]],",
    "]],[",
    "]]]",
    "]]]]}",
    "],[",
    '"],["',
)
"""Strings that become single tokens (each pre-token piece: a word or a punctuation run)."""


def byte_chars() -> list[str]:
    """GPT-2's byte-to-unicode table: the character that stands for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + extra
            extra += 1
    return [chr(chars[b]) for b in range(256)]


def vocabulary() -> tuple[list[str], list[str], list[int]]:
    """Tokens, merges and token types: bytes, then merged words, then control tokens."""
    table = byte_chars()
    tokens = list(table)
    merges: list[str] = []
    known = set(tokens)
    for word in WORDS:
        mapped = "".join(table[b] for b in word.encode())
        for k in range(2, len(mapped) + 1):
            piece = mapped[:k]
            if piece in known:
                continue
            merges.append(f"{mapped[: k - 1]} {mapped[k - 1]}")
            tokens.append(piece)
            known.add(piece)
    types = [1] * len(tokens) + [3] * len(SPECIAL)  # NORMAL, then CONTROL
    return [*tokens, *SPECIAL], merges, types


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """Write the model to `path` (deterministic for a seed) and return the path."""
    import gguf
    import numpy as np

    tokens, merges, types = vocabulary()
    rng = np.random.default_rng(seed)

    def weights(*shape: int, std: float = 0.1) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("squadmind-tiny-random")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_BLOCKS)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    vocab = len(tokens)
    writer.add_tensor("token_embd.weight", weights(vocab, N_EMBD))
    for i in range(N_BLOCKS):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    writer.add_tensor("output.weight", weights(vocab, N_EMBD, std=0.02))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
