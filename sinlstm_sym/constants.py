"""Names and defaults shared by several modules: one place, so no module imports upward for a constant."""
from typing import Tuple

# --- model -------------------------------------------------------------------
DEFAULT_HIDDEN_SIZES: Tuple[int, ...] = (10, 20, 1)  # the original's three LSTMCells; the last is the prediction
INPUT_SIZE = 1  # one feature per step
CELLS = ("unrolled", "fused", "native", "auto")
FUSED_LAYOUT_CELLS = ("fused", "native", "auto")  # one flat parameter vector per layer
# 'auto': the native C++ operator where it builds and loads (CPU), else 'fused' (one mx.sym.RNN per layer);
# all three give the same numbers as 'unrolled' (mx.rnn.LSTMCell per step), tested.
DEFAULT_CELL = "auto"
DEFAULT_FORGET_BIAS = 1.0

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
DEFAULT_BUCKETS: Tuple[int, ...] = tuple(range(1, 10))
DEFAULT_BATCH_SIZE = 300
DEFAULT_NUM_SAMPLES = 300000
DEFAULT_STEP = 0.01

# --- training ----------------------------------------------------------------
KVSTORES = ("local", "device", "dist_sync", "dist_async")
DISTRIBUTED_KVSTORES = ("dist_sync", "dist_async")
DEFAULT_OPTIMIZER = "adam"
# A log window whose mean loss exceeds this many times the first batch's loss, and still rises, is divergence.
DIVERGENCE_FACTOR = 4.0
DIVERGENCE_MIN_WINDOWS = 100  # log windows holding fewer training windows are too noisy to judge
# A parameter larger than this in absolute value means the updates exploded (every gate saturated).
EXPLODED_PARAMETER = 1e3
