"""The knowledge grid's GEMM FLOPs and the whole study's cost, shared by
bench/paper_cpu_report.py (CPU core-hours) and bench/paper_gpu_report.py
(GPU-hours): the one place that holds the study's sizes and the formula.

The study (docs/methods.md; Du et al. 2025): four analyses on Llama-3.1-8B
(32 layers, the widths of the benchmark checkpoint's config.json), three
models (base, SFT, instruct), the paper's dataset sizes:
  knowledge  the cities pairs of Llama-3 (238) x 7 combinations (3 models +
             4 cross directions) x every (layer, position) cell;
  truth      activations of every statement of the five training sets and
             cities (12 tokens each), then the cities test prompts x 3 target
             models x 4 conditions as full forwards (an upper bound);
  refusal    directions from 256 train prompts (25 tokens), then 100 test
             prompts x 11 generation conditions x 3 targets, 25 + 16 tokens
             (decoding counted at the GEMM rate: optimistic);
  confidence cosines of every MLP neuron with W_U, 3 models.
Counted are GEMM FLOPs (2 per multiply-add) of the useful rows; a cost is
FLOPs / the measured FLOP rate of the grid (whole grid time, not GEMM time
alone), so the other ops' share is carried along at the grid's proportion."""
import json
import os

STUDY_LAYERS = 32                    # Llama-3.1-8B
KN_PAIRS, KN_COMBOS = 238, 7         # cities pairs of Llama-3; 3 models + 4 cross directions
TRUTH_TRAIN = ("sp_en_trans", "animal_class", "inventors", "element_symb", "facts")
TRUTH_TEST = "cities"
TRUTH_TOKENS, TRUTH_CONDITIONS = 12, 1 + 3            # statement tokens; PD + 3 sources' interventions
REFUSAL_TRAIN, REFUSAL_TOKENS = 256, 25
REFUSAL_TEST, REFUSAL_CONDITIONS, REFUSAL_NEW = 100, 4 + 7, 16
MODELS = 3


def widths(model_dir):
    """The GEMM widths of a checkpoint (config.json): d, ff, L, V, qd, kvd
    and row = the GEMM FLOPs of one row through one layer."""
    c = json.load(open(os.path.join(model_dir, "config.json")))
    d, ff = c["hidden_size"], c["intermediate_size"]
    hd = c.get("head_dim") or d // c["num_attention_heads"]
    qd, kvd = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    return {"d": d, "ff": ff, "L": c["num_hidden_layers"], "V": c["vocab_size"], "qd": qd, "kvd": kvd,
            "row": 2 * (d * qd + 2 * d * kvd + qd * d + 3 * d * ff)}


def grid_flops(w, T, layers, N):
    """mechdiff, one pair of T-token prompts: two clean runs, each cell's
    partial forward from layer l+1 over positions [t, T), two logits per row."""
    cells = sum((layers - l - 1) * (T - tt) for tt in range(T - N, T) for l in range(layers))
    return 2 * T * layers * w["row"] + cells * w["row"] + (2 + layers * N) * 2 * 2 * w["d"]


def naive_flops(w, T, layers, N):
    """One full forward per cell (+ the two clean runs), two logits."""
    return (2 + layers * N) * (T * layers * w["row"] + 2 * 2 * w["d"])


def block_grid_flops(w, lens, layers, N, block):
    """grid_flops of pairs with prompt lengths `lens` (dataset order) run in
    units of `block` pairs: each block's prompts are left-padded to its
    longest, so its clean runs carry the padding rows too (what a run's GEMMs
    compute; grid_flops of the real lengths leaves the padding out)."""
    total = 0
    for i in range(0, len(lens), block):
        b = [int(x) for x in lens[i:i + block]]
        total += len(b) * grid_flops(w, max(b), layers, N)
    return total


def _csv_rows(data_dir, name):
    with open(os.path.join(data_dir, f"{name}.csv")) as f:
        return sum(1 for _ in f) - 1


def study(w, T_mean, N, data_dir):
    """The study's GEMM FLOPs per analysis: [(name, flops, what)]."""
    L = STUDY_LAYERS
    fwd = lambda tokens: tokens * L * w["row"]     # a forward of `tokens` rows through 32 layers
    train = sum(_csv_rows(data_dir, f) for f in TRUTH_TRAIN)
    test = _csv_rows(data_dir, TRUTH_TEST)
    kn = KN_PAIRS * KN_COMBOS * grid_flops(w, T_mean, L, N)
    truth = MODELS * fwd(TRUTH_TOKENS * (train + test)) + MODELS * TRUTH_CONDITIONS * test * fwd(T_mean)
    refusal = (MODELS * fwd(REFUSAL_TOKENS * REFUSAL_TRAIN)
               + MODELS * REFUSAL_CONDITIONS * REFUSAL_TEST * fwd(REFUSAL_TOKENS + REFUSAL_NEW))
    confidence = MODELS * 2.0 * w["ff"] * w["V"] * w["d"]
    return [("knowledge", kn, f"cities {KN_PAIRS} pairs x {KN_COMBOS} combinations x {L * N} cells"),
            ("truth", truth, f"{train + test} statements' activations; {test} test prompts x 3 targets "
                             f"x 4 conditions, full forwards (upper bound)"),
            ("refusal", refusal, f"{REFUSAL_TRAIN} train prompts; {REFUSAL_TEST} test prompts x "
                                 f"{REFUSAL_CONDITIONS} conditions x 3 targets, {REFUSAL_TOKENS} + {REFUSAL_NEW} "
                                 f"tokens (decoding at the GEMM rate: optimistic)"),
            ("confidence", confidence, "every neuron x the vocabulary, 3 models")]


def cell_seconds(w, T_mean, N, seconds_per_flop):
    """Seconds of one knowledge cell at 32 layers at the given rate."""
    L = STUDY_LAYERS
    return grid_flops(w, T_mean, L, N) / (L * N) * seconds_per_flop


def print_study(rows, seconds_per_flop, unit, decimals=1):
    """One line per analysis, then the total's line left open (the caller
    ends it); returns the total hours."""
    total = sum(fl for _, fl, _ in rows)
    for name, fl, what in rows:
        print(f"  {name:10s} {fl / 1e15:8.2f} PFLOP  {fl * seconds_per_flop / 3600:8.{decimals}f} {unit}   ({what})")
    hours = total * seconds_per_flop / 3600
    print(f"  total      {total / 1e15:8.2f} PFLOP  {hours:8.{decimals}f} {unit}", end="")
    return hours
