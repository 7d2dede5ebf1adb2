#!/usr/bin/env python3
"""make_golden.py -- reference ("golden") data for the mechdiff C forward pass.

WHAT IT MAKES
    tests/golden/models/<name>/           one folder per tiny checkpoint:
        config.json, generation_config.json   written by transformers save_pretrained
        model.safetensors                      (or model-0000k-of-0000n.safetensors
                                               + model.safetensors.index.json)
        golden.safetensors                     reference tensors, all F32 (ids too)
    tests/golden/models/README.md          layout, tensor names/shapes, versions,
                                           logit scales and tolerances

    Checkpoints (all hidden 64, 2 layers, vocab 300, intermediate 72, random init):
        llama3_f32          Llama, GQA 4q/2kv, head_dim 16, rope llama3 scaling, untied, f32
        llama3_bf16         same weights as llama3_f32, saved in bfloat16
        llama2_tied_f32     Llama, MHA, tied embeddings, theta 1e4, no scaling, eps 1e-6
        llama2_f32          Llama, MHA, untied, linear rope scaling factor 2
        mistral_f32         Mistral, GQA, theta 1e6, explicit head_dim 24 != 64/4
        llama3_sharded_f32  same weights as llama3_f32, saved in >= 3 shards
        qwen2_f32 / _bf16   Qwen2: q/k/v biases, GQA 4q/2kv, tied embeddings, theta 1e6
        qwen3_f32 / _bf16   Qwen3: per-head q/k RMSNorm, head_dim 24 != 64/4, untied
        gemma2_f32 / _bf16  Gemma-2: (1 + w) norms, pre+post norms, embeddings x sqrt(d), GELU-tanh,
                            query_pre_attn_scalar 32, attention soft-cap 3 and final soft-cap 5
                            (small, so both change the numbers), sliding window 4 on even layers
                            (T = 12, so layer 0's window masks), head_dim 24, tied
        olmo2_f32 / _bf16   OLMo-2: post-norms on both branches, q/k RMSNorm over the whole projection

    The C test suite only needs the committed files; torch/transformers are
    needed solely to regenerate them.

HOW TO RE-RUN (dev only; CPU torch is enough, takes a few seconds)
    OMP_NUM_THREADS=1 /tmp/venv/bin/python scripts/dev/make_golden.py
    # options: --out DIR (default tests/golden/models), --only NAME[,NAME]

    Everything is seeded (torch.Generator per model, fixed input ids), the
    forward pass is float32 eager attention on CPU with 1 thread, so a re-run
    with the same torch/transformers versions reproduces the files bit-for-bit
    (versions are recorded in the README). After regenerating, run the C
    golden tests and commit the folder together with this script.

REFERENCE DEFINITIONS (TransformerLens hook names, per layer l)
    resid_pre  = decoder layer input hidden_states
    attn_out   = self_attn output[0] (after o_proj); for post-norm families
                 (Gemma-2, OLMo-2) the output of post_attention_layernorm, i.e.
                 what is added to the residual (TransformerLens's Gemma-2 hook_attn_out)
    resid_mid  = resid_pre + attn_out
    mlp_out    = mlp output (after down_proj); post_feedforward_layernorm's output
                 for Gemma-2 and OLMo-2
    resid_post = decoder layer output
    mlp_post   = input of mlp.down_proj  (act(gate_proj x) * up_proj x)
    z          = input of self_attn.o_proj (forward pre-hook): [n_heads * head_dim]
                 per position, head-major (TransformerLens hook_z flattened)
    pattern    = output_attentions of the eager attention, [B][heads][query][key]
                 transposed to mechdiff's row order [query][heads][key]

    Per-head goldens only (existing folders, weights untouched):
        OMP_NUM_THREADS=1 /tmp/venv/bin/python scripts/dev/make_golden.py --heads-only
    re-runs the reference forward from the committed checkpoint, asserts it
    reproduces the committed logits bit for bit, and adds the acts.z,
    acts.pattern and head_patch.* tensors to golden.safetensors (every other
    tensor is kept as it is).
"""

import argparse
import inspect
import json
import math
import os
import platform
import shutil
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file, load_file  # noqa: E402
from transformers import (  # noqa: E402
    Gemma2Config,
    Gemma2ForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Olmo2Config,
    Olmo2ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

CLASSES = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM),
    "gemma2": (Gemma2Config, Gemma2ForCausalLM),
    "olmo2": (Olmo2Config, Olmo2ForCausalLM),
}
POST_NORM = ("gemma2", "olmo2")  # attn_out / mlp_out are the post-norms' outputs

torch.set_num_threads(1)
transformers.utils.logging.disable_progress_bar()
torch.use_deterministic_algorithms(True)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "tests", "golden", "models")

# ---------------------------------------------------------------- constants
VOCAB = 300
HIDDEN = 64
LAYERS = 2
FF = 72  # not a multiple of 16/32: exercises kernel tails (small to keep the repo < 3 MB)
B, T = 2, 12
GEN_PROMPT_LEN, GEN_NEW = 6, 8
PATCH_LAYER, PATCH_POS, PATCH_SRC, PATCH_DST = 1, 5, 1, 0
PATCH0_LAYER = 0  # extra patch at layer 0 so the change propagates through layer 1
HEAD_PATCH_LAYER, HEAD_PATCH_HEAD = 0, 1  # one head's z at (layer 0, PATCH_POS), src -> dst
BOS, EOS = 1, 2

# llama3 rope: theta 5e5, head_dim 16 -> wavelengths 2*pi*5e5^(i/8), i=0..7:
#   6.28, 32.5, 168, 873, 4520, 2.3e4, 1.2e5, 6.3e5
# With original_max_position_embeddings = 64, low_freq_factor 1, high 4:
#   high band (wavelen < 16, unchanged): i=0
#   mid band (16..64, smoothed):         i=1 (smooth factor 0.32)
#   low band (> 64, divided by 8):       i=2..7
# (with 32 instead of 64, i=1 would sit at 32.5 > 32, i.e. no mid-band frequency)
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,
    "rope_theta": 500000.0,
}


def llama3_cfg():
    return dict(
        arch="llama",
        seed=1001,
        cfg=dict(
            vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FF,
            num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=512, rms_norm_eps=1e-5,
            rope_parameters=dict(LLAMA3_ROPE), tie_word_embeddings=False,
            bos_token_id=BOS, eos_token_id=EOS,
        ),
    )


SPECS = {
    "llama3_f32": dict(llama3_cfg(), save_dtype=torch.float32),
    "llama3_bf16": dict(llama3_cfg(), save_dtype=torch.bfloat16),
    "llama2_tied_f32": dict(
        arch="llama", seed=1003, save_dtype=torch.float32,
        cfg=dict(
            vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FF,
            num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            tie_word_embeddings=True, bos_token_id=BOS, eos_token_id=EOS,
        ),
    ),
    "llama2_f32": dict(
        arch="llama", seed=1004, save_dtype=torch.float32,
        cfg=dict(
            vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FF,
            num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=256, rms_norm_eps=1e-6,
            # legacy spelling {type: linear, factor: 2}; transformers 5 rewrites it
            rope_scaling={"type": "linear", "factor": 2.0}, rope_theta=10000.0,
            tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS,
        ),
    ),
    "mistral_f32": dict(
        arch="mistral", seed=1005, save_dtype=torch.float32,
        cfg=dict(
            vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FF,
            num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
            head_dim=24, max_position_embeddings=256, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            sliding_window=None, tie_word_embeddings=False,
            bos_token_id=BOS, eos_token_id=EOS,
        ),
    ),
    "llama3_sharded_f32": dict(llama3_cfg(), save_dtype=torch.float32, max_shard_size="120KB"),
}

COMMON = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FF, num_hidden_layers=LAYERS,
              max_position_embeddings=256, bos_token_id=BOS, eos_token_id=EOS)
NEW_FAMILIES = {
    "qwen2": dict(arch="qwen2", seed=1101, cfg=dict(
        COMMON, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        use_sliding_window=False, tie_word_embeddings=True)),
    "qwen3": dict(arch="qwen3", seed=1102, cfg=dict(
        COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        attention_bias=False, use_sliding_window=False, tie_word_embeddings=False)),
    "gemma2": dict(arch="gemma2", seed=1103, cfg=dict(
        COMMON, num_attention_heads=4, num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=32,
        attn_logit_softcapping=3.0, final_logit_softcapping=5.0, sliding_window=4,
        tie_word_embeddings=True, pad_token_id=0)),
    "olmo2": dict(arch="olmo2", seed=1104, cfg=dict(
        COMMON, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        attention_bias=False, tie_word_embeddings=False, pad_token_id=0)),
}
for _fam, _spec in NEW_FAMILIES.items():
    SPECS[f"{_fam}_f32"] = dict(_spec, save_dtype=torch.float32)
    SPECS[f"{_fam}_bf16"] = dict(_spec, save_dtype=torch.bfloat16)


# ---------------------------------------------------------------- model setup
def make_config(spec):
    kw = dict(spec["cfg"])
    kw["rope_parameters"] = dict(kw["rope_parameters"]) if "rope_parameters" in kw else None
    if kw["rope_parameters"] is None:
        del kw["rope_parameters"]
    cfg = CLASSES[spec["arch"]][0](**kw)
    cfg._attn_implementation = "eager"
    return cfg


def model_class(spec):
    return CLASSES[spec["arch"]][1]


@torch.no_grad()
def init_weights(model, seed, arch):
    """Deterministic init with O(1) activations (HF default std 0.02 makes
    everything tiny and leaves norm weights at exactly 1, hiding bugs)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith("norm.weight"):
            # gains U(0.6, 1.4); Gemma stores w and scales by (1 + w)
            p.copy_((0.0 if arch != "gemma2" else -1.0) + 0.6 + 0.8 * torch.rand(p.shape, generator=g))
        elif name.endswith(".bias"):  # Qwen2's q/k/v biases
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
        elif "embed_tokens" in name:  # std 0.25 (also the tied lm_head)
            p.copy_(0.25 * torch.randn(p.shape, generator=g))
        elif name == "lm_head.weight":  # logits of a few units -> robust argmax
            p.copy_(torch.randn(p.shape, generator=g) * (2.0 / math.sqrt(p.shape[1])))
        elif p.dim() == 2:  # nn.Linear weight [out, in]
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
        else:
            raise RuntimeError(f"unexpected parameter {name} {tuple(p.shape)}")


def input_ids():
    g = torch.Generator().manual_seed(4242)
    ids = torch.randint(3, VOCAB, (B, T), generator=g)
    assert not torch.equal(ids[0], ids[1])
    return ids


# ---------------------------------------------------------------- capture
@torch.no_grad()
def run_with_acts(model, ids, arch):
    layers = model.model.layers
    L = len(layers)
    store = {k: [None] * L for k in ("resid_pre", "attn_out", "mlp_out", "resid_post", "mlp_post")}
    handles = []

    def first(x):
        return x[0] if isinstance(x, (tuple, list)) else x

    for i, layer in enumerate(layers):
        def pre(mod, args, kwargs, i=i):
            hs = args[0] if args else kwargs["hidden_states"]
            store["resid_pre"][i] = hs.detach().clone()
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        attn_mod = layer.post_attention_layernorm if arch in POST_NORM else layer.self_attn
        mlp_mod = layer.post_feedforward_layernorm if arch in POST_NORM else layer.mlp
        handles.append(attn_mod.register_forward_hook(
            lambda m, a, o, i=i: store["attn_out"].__setitem__(i, first(o).detach().clone())))
        handles.append(mlp_mod.register_forward_hook(
            lambda m, a, o, i=i: store["mlp_out"].__setitem__(i, first(o).detach().clone())))
        handles.append(layer.register_forward_hook(
            lambda m, a, o, i=i: store["resid_post"].__setitem__(i, first(o).detach().clone())))
        handles.append(layer.mlp.down_proj.register_forward_pre_hook(
            lambda m, a, i=i: store["mlp_post"].__setitem__(i, a[0].detach().clone())))
    try:
        logits = model(input_ids=ids, use_cache=False).logits
    finally:
        for h in handles:
            h.remove()
    acts = {k: torch.stack(v) for k, v in store.items()}
    acts["resid_mid"] = acts["resid_pre"] + acts["attn_out"]
    # internal consistency: resid_post == resid_mid + mlp_out, resid_pre[l+1] == resid_post[l]
    assert torch.allclose(acts["resid_post"], acts["resid_mid"] + acts["mlp_out"], atol=1e-5)
    assert torch.equal(acts["resid_pre"][1:], acts["resid_post"][:-1])
    return logits.detach().clone(), acts


@torch.no_grad()
def run_heads(model, ids):
    """z (the input of each layer's o_proj) [L][B][T][heads*hd] and the
    attention pattern [L][B][T][heads][T] (eager output_attentions)."""
    L = len(model.model.layers)
    z = [None] * L
    handles = [layer.self_attn.o_proj.register_forward_pre_hook(
        lambda m, a, i=i: z.__setitem__(i, a[0].detach().clone()))
        for i, layer in enumerate(model.model.layers)]
    try:
        out = model(input_ids=ids, use_cache=False, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    pattern = torch.stack([a.detach().permute(0, 2, 1, 3).contiguous() for a in out.attentions])
    return out.logits.detach().clone(), torch.stack(z), pattern


@torch.no_grad()
def run_head_patched(model, ids_dst, replacement, layer, head, pos):
    """Run ids_dst ([1,T]) with z[layer][pos] of one head replaced by `replacement` ([hd])."""
    hd = replacement.numel()

    def pre(mod, args):
        x = args[0].clone()
        x[:, pos, head * hd:(head + 1) * hd] = replacement.to(x.dtype)
        return (x,) + tuple(args[1:])
    h = model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(pre)
    try:
        return model(input_ids=ids_dst, use_cache=False).logits[0].detach().clone()
    finally:
        h.remove()


def head_goldens(model, ids, logits_ref):
    """acts.z, acts.pattern, head_patch.*; checks the decomposition
    sum_h z_h W_O,h = o_proj output and that the run matches logits_ref."""
    logits, z, pattern = run_heads(model, ids)
    assert torch.equal(logits, logits_ref), "output_attentions changed the logits"
    nh = model.config.num_attention_heads
    hd = z.shape[-1] // nh
    g = {"acts.z": z.float(), "acts.pattern": pattern.float()}
    repl = z[HEAD_PATCH_LAYER, PATCH_SRC, PATCH_POS, HEAD_PATCH_HEAD * hd:(HEAD_PATCH_HEAD + 1) * hd]
    pl = run_head_patched(model, ids[PATCH_DST:PATCH_DST + 1], repl, HEAD_PATCH_LAYER, HEAD_PATCH_HEAD, PATCH_POS)
    diff = (pl - logits[PATCH_DST]).abs().amax(-1)
    assert diff[:PATCH_POS].max() == 0 and diff[PATCH_POS] > 1e-3, diff
    g["head_patch.logits"] = pl.float()
    for k, v in (("layer", HEAD_PATCH_LAYER), ("head", HEAD_PATCH_HEAD), ("pos", PATCH_POS),
                 ("src_batch", PATCH_SRC), ("dst_batch", PATCH_DST)):
        g[f"head_patch.{k}"] = torch.tensor([v], dtype=torch.float32)
    return g, float(diff[PATCH_POS:].max())


def add_heads(name, spec, out_root, ids):
    """--heads-only: add the per-head tensors to an existing folder's golden."""
    path = os.path.join(out_root, name)
    gpath = os.path.join(path, "golden.safetensors")
    golden = load_file(gpath)
    m32 = load_model(spec, path, torch.float32)
    with torch.no_grad():
        logits = m32(input_ids=ids, use_cache=False).logits
    assert torch.equal(logits.float(), golden["logits"]), f"{name}: the reference no longer reproduces its logits"
    extra, dmax = head_goldens(m32, ids, logits)
    golden.update(extra)
    golden = {k: v.contiguous() for k, v in golden.items()}
    save_file(golden, gpath, metadata={
        "generator": f"scripts/dev/make_golden.py torch={torch.__version__} "
                     f"transformers={transformers.__version__}",
    })
    return {"head_patch_max_dlogit": dmax, "max_abs_z": float(extra["acts.z"].abs().max())}


@torch.no_grad()
def run_patched(model, ids_dst, replacement, layer, pos):
    """Run ids_dst ([1,T]); replace resid_post[layer][:, pos, :] by `replacement` ([d])."""
    def hook(mod, args, out):
        hs = out[0] if isinstance(out, (tuple, list)) else out
        hs = hs.clone()
        hs[:, pos, :] = replacement.to(hs.dtype)
        return (hs,) + tuple(out[1:]) if isinstance(out, (tuple, list)) else hs
    h = model.model.layers[layer].register_forward_hook(hook)
    try:
        return model(input_ids=ids_dst, use_cache=False).logits[0].detach().clone()
    finally:
        h.remove()


@torch.no_grad()
def greedy(model, seed0):
    """Greedy generation of GEN_NEW tokens. Chooses (deterministically) the first
    prompt whose continuation neither hits EOS (so an engine that stops on EOS
    agrees) nor has a top-1/top-2 logit gap < 0.05 (so tolerance-level noise
    cannot flip an argmax). Cross-checked against a cache-free argmax loop."""
    for attempt in range(100):
        g = torch.Generator().manual_seed(seed0 + attempt)
        prompt = torch.randint(3, VOCAB, (1, GEN_PROMPT_LEN), generator=g)
        out = model.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=GEN_NEW,
            do_sample=False, eos_token_id=EOS, pad_token_id=0,
            output_scores=True, return_dict_in_generate=True,
        )
        seq = out.sequences[0]
        new = seq[GEN_PROMPT_LEN:]
        if len(new) != GEN_NEW or (new == EOS).any():
            continue
        gaps = [float((lambda s: s[0] - s[1])(torch.topk(sc[0].float(), 2).values)) for sc in out.scores]
        if min(gaps) < 0.05:
            continue
        # cache-free reference loop
        cur = prompt.clone()
        for _ in range(GEN_NEW):
            nxt = model(input_ids=cur, use_cache=False).logits[0, -1].argmax()
            cur = torch.cat([cur, nxt.view(1, 1)], dim=1)
        assert torch.equal(cur[0], seq), (cur, seq)
        return prompt[0], new, min(gaps), attempt
    raise RuntimeError("no suitable generation prompt found")


# ---------------------------------------------------------------- main
def save_model(model, path, spec):
    kwargs = {}
    params = inspect.signature(model.save_pretrained).parameters
    if "safe_serialization" in params:  # transformers 4.x; 5.x always writes safetensors
        kwargs["safe_serialization"] = True
    if "max_shard_size" in spec:
        kwargs["max_shard_size"] = spec["max_shard_size"]
    model.save_pretrained(path, **kwargs)


def load_model(spec, path, dtype):
    return model_class(spec).from_pretrained(path, dtype=dtype, attn_implementation="eager").eval()


def build(name, spec, out_root, ids):
    path = os.path.join(out_root, name)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)

    torch.manual_seed(spec["seed"])
    cfg = make_config(spec)
    model = model_class(spec)(cfg).eval()
    init_weights(model, spec["seed"], spec["arch"])
    model = model.to(spec["save_dtype"])
    save_model(model, path, spec)
    del model

    # Reference: reload from disk in float32 (for bf16 checkpoints this means
    # fp32 compute on bf16-rounded weights).
    m32 = load_model(spec, path, torch.float32)
    assert m32.config._attn_implementation == "eager"
    logits, acts = run_with_acts(m32, ids, spec["arch"])

    golden = {"input_ids": ids.float(), "logits": logits.float()}
    for k in ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post", "mlp_post"):
        golden[f"acts.{k}"] = acts[k].float()
    golden.update(head_goldens(m32, ids, logits)[0])

    prompt, new, gap, attempt = greedy(m32, 777)
    golden["generate.prompt"] = prompt.float()
    golden["generate.ids"] = new.float()

    info = {"max_abs_logit": float(logits.abs().max()), "gen_min_top2_gap": gap,
            "gen_prompt_attempt": attempt}
    for tag, layer in (("patch", PATCH_LAYER), ("patch_l0", PATCH0_LAYER)):
        repl = acts["resid_post"][layer, PATCH_SRC, PATCH_POS]
        pl = run_patched(m32, ids[PATCH_DST:PATCH_DST + 1], repl, layer, PATCH_POS)
        golden[f"{tag}.logits"] = pl.float()
        golden[f"{tag}.layer"] = torch.tensor([layer], dtype=torch.float32)
        golden[f"{tag}.pos"] = torch.tensor([PATCH_POS], dtype=torch.float32)
        golden[f"{tag}.src_batch"] = torch.tensor([PATCH_SRC], dtype=torch.float32)
        golden[f"{tag}.dst_batch"] = torch.tensor([PATCH_DST], dtype=torch.float32)
        diff = (pl - logits[PATCH_DST]).abs().amax(-1)
        assert diff[:PATCH_POS].max() < 1e-5 and diff[PATCH_POS] > 1e-2, (tag, diff)
        info[f"{tag}_changed_positions"] = [int(t) for t in (diff > 1e-5).nonzero().flatten()]

    if spec["save_dtype"] == torch.bfloat16:
        mbf = load_model(spec, path, torch.bfloat16)
        with torch.no_grad():
            lbf = mbf(input_ids=ids, use_cache=False).logits.float()
        golden["logits_bf16compute"] = lbf
        info["bf16compute_max_abs_dev"] = float((lbf - logits).abs().max())
        del mbf

    golden = {k: v.contiguous() for k, v in golden.items()}
    gpath = os.path.join(path, "golden.safetensors")
    # One metadata key only: safetensors writes metadata in hash-map order, so
    # several keys would make the file bytes differ from run to run.
    save_file(golden, gpath, metadata={
        "generator": f"scripts/dev/make_golden.py torch={torch.__version__} "
                     f"transformers={transformers.__version__}",
    })

    # Verify: fresh reload reproduces its own logits; golden reloads equal.
    m2 = load_model(spec, path, torch.float32)
    with torch.no_grad():
        l2 = m2(input_ids=ids, use_cache=False).logits
    info["reload_max_abs_diff"] = float((l2 - logits).abs().max())
    assert info["reload_max_abs_diff"] <= 1e-6, info
    # fp32 rounding noise of the reference itself: same weights run in float64.
    with torch.no_grad():
        l64 = m2.double()(input_ids=ids, use_cache=False).logits
    info["fp32_vs_fp64_max_abs"] = float((logits.double() - l64).abs().max())
    info["max_abs_act"] = {k: float(acts[k].abs().max()) for k in acts}
    g2 = load_file(gpath)
    assert all(torch.equal(g2[k], golden[k]) for k in golden)

    # Checks on the saved folder itself.
    files = sorted(os.listdir(path))
    info["files"] = files
    with open(os.path.join(path, "config.json")) as f:
        info["config"] = json.load(f)
    weight_files = [f for f in files if f.startswith("model") and f.endswith(".safetensors")]
    keys = set()
    for wf in weight_files:
        keys |= set(load_file(os.path.join(path, wf)).keys())
    info["weight_keys"] = sorted(keys)
    info["weight_dtypes"] = sorted({str(t.dtype) for wf in weight_files
                                    for t in load_file(os.path.join(path, wf)).values()})
    if cfg.tie_word_embeddings:
        info["has_lm_head"] = "lm_head.weight" in keys
        assert m2.lm_head.weight.data_ptr() == m2.model.embed_tokens.weight.data_ptr()
    if "max_shard_size" in spec:
        assert "model.safetensors.index.json" in files and len(weight_files) >= 3, files
    info["shapes"] = {k: list(v.shape) for k, v in golden.items()}
    info["rope_inv_freq"] = m2.model.rotary_emb.inv_freq.float().tolist()
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default="")
    ap.add_argument("--summary", default="", help="also write a JSON summary here (dev aid)")
    ap.add_argument("--heads-only", action="store_true",
                    help="only add acts.z / acts.pattern / head_patch.* to existing folders")
    a = ap.parse_args()
    names = [n for n in SPECS if not a.only or n in a.only.split(",")]
    os.makedirs(a.out, exist_ok=True)
    ids = input_ids()
    summary = {}
    if a.heads_only:
        for n in names:
            summary[n] = add_heads(n, SPECS[n], a.out, ids)
            print(f"{n:20s} heads: {summary[n]}")
        return summary
    for n in names:
        summary[n] = build(n, SPECS[n], a.out, ids)
        s = summary[n]
        print(f"{n:20s} max|logit|={s['max_abs_logit']:.3f} reload_diff={s['reload_max_abs_diff']:.2e} "
              f"gap={s['gen_min_top2_gap']:.3f} files={s['files']}"
              + (f" bf16dev={s['bf16compute_max_abs_dev']:.3e}" if "bf16compute_max_abs_dev" in s else ""))
    summary["_versions"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                            "python": platform.python_version()}
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f, indent=1)
    return summary


if __name__ == "__main__":
    main()
