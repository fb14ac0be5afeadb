"""Names and defaults shared by several modules: one place, so no module imports upward for a constant."""
import signal
from typing import Tuple

# --- model -------------------------------------------------------------------
DEFAULT_HIDDEN_SIZES: Tuple[int, ...] = (10, 20, 1)  # the original's three LSTMCells; the last is the prediction
INPUT_SIZE = 1  # one feature per step
CELLS = ("unrolled", "fused", "native", "auto")
FUSED_LAYOUT_CELLS = ("fused", "native", "auto")  # one flat parameter vector per layer
# 'auto': the native C++ operator where it builds and loads (CPU), else 'fused' (one mx.sym.RNN per layer);
# all three give the same numbers as 'unrolled' (mx.rnn.LSTMCell per step), tested.
DEFAULT_CELL = "auto"
DEFAULT_FORGET_BIAS = 0.0  # the recipe (docs/results.md); mx.rnn.LSTMCell's own default, 1.0, is the original's
ORIGINAL_FORGET_BIAS = 1.0
# Per-step loss weights w_k = 1 + DEFAULT_STEP_WEIGHT * exp(-(k - 1) / DEFAULT_STEP_TAU), k = 1..L ('sequence'):
# the first steps, which see the fewest inputs, weigh most.
DEFAULT_STEP_WEIGHT = 4.0
DEFAULT_STEP_TAU = 1.0

# --- data --------------------------------------------------------------------
LABEL_MODES = ("sequence", "last")  # a label at every step / only after the last step
DEFAULT_LABEL_MODE = "sequence"
FEATURES = ("time", "value")  # input at each step: the time stamp t, or the value target(t)
DEFAULT_FEATURE = "time"
DTYPES = ("float32", "float64")
DATA_LAYOUT = "NTC"
DATA_NAME = "data"
LABEL_NAME = "label"
PRED_NAME = "pred"  # the symbol's only output is PRED_NAME + "_output"
DEFAULT_BUCKETS: Tuple[int, ...] = tuple(range(1, 10)) + (12, 16, 20)  # the recipe: 1..9 plus three long ones
DEFAULT_BATCH_SIZE = 100
DEFAULT_NUM_SAMPLES = 100000
DEFAULT_STEP = 0.01
DEFAULT_T_RANGE = (-0.1, 1.12)  # start times of training windows: a margin around [0, 1) on both sides
ORIGINAL_BUCKETS: Tuple[int, ...] = (9,)  # the original 2018 task: 9 steps, last label, batch 300, 300000 per pass
ORIGINAL_BATCH_SIZE = 300
ORIGINAL_NUM_SAMPLES = 300000

# --- training ----------------------------------------------------------------
KVSTORES = ("local", "device", "dist_sync", "dist_async")
DISTRIBUTED_KVSTORES = ("dist_sync", "dist_async")
DEFAULT_OPTIMIZER = "adam"
DEFAULT_NUM_EPOCH = 2
DEFAULT_OPTIMIZER_PARAMS = {"learning_rate": 0.03, "beta2": 0.99}
DEFAULT_LR_SCHEDULE = {"name": "cosine", "warmup_steps": 100}  # to zero over the run's updates
# Optimizer arguments: floats at most this large (MXNet's float32 operator parameters overflow), ints int32.
OPTIMIZER_FLOAT_LIMIT = 1e6
OPTIMIZER_INT_LIMIT = 2 ** 31 - 1
# Signals that stop training at a batch boundary (the second one at once); deferred while a checkpoint is written.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A log window whose mean loss exceeds this many times the first batch's loss, and still rises, is divergence.
DIVERGENCE_FACTOR = 4.0
DIVERGENCE_MIN_WINDOWS = 100  # log windows holding fewer training windows are too noisy to judge
# A parameter larger than this in absolute value means the updates exploded (every gate saturated).
EXPLODED_PARAMETER = 1e3
