"""A tiny random llama-architecture GGUF that both llama.cpp servers load in under a second.

About half a megabyte: a byte-level vocabulary (`<unk>`, `<s>`, `</s>` and the 256 byte tokens
`<0x00>`..`<0xFF>`, tokenizer model `llama`), 64-wide embeddings, 2 layers, 4 heads, random f32
weights, and a ChatML chat template, which /v1/chat/completions needs. It answers garbage, quickly:
the tests need real servers that answer, not a model that knows anything.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

N_EMBD, N_LAYER, N_HEAD = 64, 2, 4  # the feed-forward is twice as wide
TRAIN_CONTEXT = 4096  # the context a slot may not exceed (llama-server caps n_ctx_slot at it)
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_tiny_gguf(path: Path, seed: int = 0, n_embd: int = N_EMBD, n_layer: int = N_LAYER) -> Path:
    """`n_embd` and `n_layer` larger: a model as fast to load that generates more slowly (a test
    that must catch a reply while it is generated: 64 wide, 400 tokens take about 60 ms)."""
    n_ff = 2 * n_embd
    rng = np.random.default_rng(seed)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("llmfleet-tiny")
    writer.add_context_length(TRAIN_CONTEXT)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(n_embd // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_chat_template(CHATML)

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    vocab = len(tokens)
    tensor("token_embd.weight", vocab, n_embd)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    tensor("output.weight", vocab, n_embd)
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{name}.weight", n_embd, n_embd)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        tensor(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        tensor(f"blk.{i}.ffn_down.weight", n_embd, n_ff)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
