"""Names and defaults shared by several modules: one place, so no module imports upward for a constant."""
import signal
from typing import Tuple

# --- model -------------------------------------------------------------------
DEFAULT_HIDDEN_SIZES: Tuple[int, ...] = (10, 20, 1)  # the original's three LSTMCells; the last is the prediction
INPUT_SIZE = 1  # one feature per step
CELLS = ("unrolled", "fused", "native", "auto")
FUSED_LAYOUT_CELLS = ("fused", "native", "auto")  # one flat parameter vector per layer
# 'auto': the native C++ operator where it builds and loads (CPU), else 'fused' (one mx.sym.RNN per layer);
# all hold the parameters of 'unrolled' (mx.rnn.LSTMCell per step); outputs agree within about 1e-5 (tested).
DEFAULT_CELL = "auto"
DEFAULT_FORGET_BIAS = 0.0  # the recipe (docs/results.md); mx.rnn.LSTMCell's own default is 1.0
ORIGINAL_FORGET_BIAS = 0.0  # gluon.rnn.LSTMCell has no forget-gate offset: its biases start at zero
# Initial weights: 'library' is Xavier-uniform per gate block (the recipe); 'gluon' is what the original's
# model.initialize() gave: every weight U[-GLUON_UNIFORM_SCALE, GLUON_UNIFORM_SCALE] (mx.init.Uniform()).
# Biases start at zero in both, plus forget_bias on the forget gate's i2h bias.
INITS = ("library", "gluon")
DEFAULT_INIT = "library"
ORIGINAL_INIT = "gluon"
GLUON_UNIFORM_SCALE = 0.07
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
ORIGINAL_T_RANGE = (0.0, 1.0)  # the original's t0 ~ U[0, 1)
ORIGINAL_BUCKETS: Tuple[int, ...] = (9,)  # the original 2018 task: 9 steps, last label, batch 300, 300000 per pass
ORIGINAL_BATCH_SIZE = 300
ORIGINAL_NUM_SAMPLES = 300000

# --- the 2018 note's figures (docs/results.md) --------------------------------
# Mean loss of batches 1-20, 21-40, ..., 81-100 of the fixed task (FitConfig.original()), per optimizer.
NOTE_LOSSES = {"adam": (0.0378, 0.0223, 0.0059, 0.0043, 0.0030), "sgd": (0.0387, 0.0335, 0.0284, 0.0247, 0.0214)}
NOTE_LOG_EVERY = 20
# Its 2018-03-12 observation: outputs at the 9 steps of one window; here the window whose step-1 label
# sin(t)/2 is the note's first label, 0.3411: t0 = asin(2 * 0.3411) - 0.01.
NOTE_T0 = 0.7408
NOTE_STEPS = {"label": (0.3411, 0.3505, 0.3598, 0.3692, 0.3784, 0.3877, 0.3969, 0.4060, 0.4151),
              "trained model": (0.0347, 0.0663, 0.0962, 0.1249, 0.1526, 0.1794, 0.2050, 0.2294, 0.2525),
              "untrained model": (6.9e-06, 1.8e-05, 2.9e-05, 4.0e-05, 4.8e-05, 5.5e-05, 6.0e-05, 6.4e-05, 6.7e-05)}

# --- training ----------------------------------------------------------------
KVSTORES = ("local", "device", "dist_sync", "dist_async")
DISTRIBUTED_KVSTORES = ("dist_sync", "dist_async")
DEFAULT_OPTIMIZER = "adam"
DEFAULT_NUM_EPOCH = 2
DEFAULT_OPTIMIZER_PARAMS = {"learning_rate": 0.03, "beta2": 0.99}
DEFAULT_LR_SCHEDULE = {"name": "cosine", "warmup_steps": 100}  # to zero over the run's updates
HEARTBEAT_SECONDS = 10.0  # long phases that log nothing else (the Gluon reference, evaluations) say where they are
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
# OpenMP threads of MXNet's operators while fit trains (its operators are tiny: more threads only spin against
# the Python thread); OMP_NUM_THREADS still governs everything outside fit.
TRAINING_OMP_THREADS = 1
# How many batches of windows the built-in iterator generates in one vectorised call.
WINDOW_CHUNK_BATCHES = 64
