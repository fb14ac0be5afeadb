"""Names and defaults shared by several modules: one place, so no module imports upward for a constant."""
import signal
from typing import Tuple

# --- model -------------------------------------------------------------------
DEFAULT_HIDDEN_SIZES: Tuple[int, ...] = (10, 20, 1)  # the original's three LSTMCells; the last is the prediction
INPUT_SIZE = 1  # one feature per step
# The cells are declared in sinlstm_sym.recurrence.cells. 'auto': the native C++ operator where it builds and
# loads (CPU), else 'fused' (one mx.sym.RNN per layer); all hold the parameters of 'unrolled' (mx.rnn.LSTMCell
# per step); outputs agree within about 1e-5 (tested).
DEFAULT_CELL = "auto"
# A node attribute marking an operator that writes its input gradients whatever grad_req asks: a symbol
# holding one honours grad_req 'write' and 'null' only (SafeBucketingModule refuses 'add' for it).
WRITES_GRADIENTS_ATTR = "__writes_gradients__"
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
# the level a series model's window is modelled around: the fixed center of `scaling`, or the window's last value
WINDOW_LEVELS = ("none", "last")
DEFAULT_WINDOW_LEVEL = "none"
SERIES_WINDOW_LEVEL = "last"
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
# The recipe for real series (FitConfig.series()), tuned on the sunspots demo (README, "Your own series"): a
# constant rate and the forget-gate bias 1 (the sine recipe's cosine schedule and bias 0 were not tuned for it).
SERIES_BUCKETS: Tuple[int, ...] = (5, 10, 15, 20)
SERIES_HIDDEN_SIZES: Tuple[int, ...] = (32, 32, 1)
SERIES_BATCH_SIZE = 100
SERIES_NUM_SAMPLES = 60000
SERIES_NUM_EPOCH = 5
SERIES_FORGET_BIAS = 1.0
SERIES_OPTIMIZER_PARAMS = {"learning_rate": 0.01, "wd": 0.0001}

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
DEFAULT_OPTIMIZER = "adam"
DEFAULT_NUM_EPOCH = 2
DEFAULT_CLI_SEED = 0  # sinlstm-train is repeatable by default (fit draws a seed); a resume keeps the checkpoint's
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

# --- size limits (sinlstm_sym.config.limits) ----------------------------------------
# A request whose estimated memory exceeds this share of the memory available now is refused before allocating.
MEMORY_SHARE = 0.5
FALLBACK_MEMORY_BYTES = 4 << 30  # assumed available where /proc/meminfo and sysconf cannot tell
# Bytes per window, step and hidden unit (plus 2 for the input and the output) of a forward pass: measured 25
# with the native cell, 9 with the fused cell (hidden sizes 10, 20, 1); 32 leaves a margin.
PREDICT_BYTES_PER_UNIT_STEP = 32
# A training batch keeps every step's activations and gradients for the backward pass: measured 77 with the
# fused cell and 25 with the native cell (1000 windows of 500 steps, hidden sizes 10, 20, 1); taken 128.
TRAIN_BYTES_PER_UNIT_STEP = 128
# cell='unrolled' builds one graph node group per step and layer: measured about 100 KB per step and layer.
UNROLLED_BYTES_PER_LAYER_STEP = 100_000
# One bound executor per bucket besides its data (graph, shapes, views of the shared pool): measured about 230 KB
# (300 buckets of lengths 1..300 against 3 buckets of lengths 150..152, native cell); taken 1 MiB.
BUCKET_OVERHEAD_BYTES = 1 << 20
# The predictor's chunks hold at most this many bytes of activations (fewer windows per chunk for long windows);
# with the default model every length up to ~240 still runs 1024 windows per chunk.
PREDICT_CHUNK_BYTES = 256 << 20
DEFAULT_PREDICT_BATCH = 1024  # windows per chunk when the chunk budget allows it
# An error table keeps, per length, the per-step max errors of its rows as Python floats (~32 bytes each) and,
# while a length is scored, its windows, labels, predictions and errors as float64.
EVAL_BYTES_PER_ROW_STEP = 32
EVAL_BYTES_PER_WINDOW_STEP = 48
# A list flag ('1-9,12') longer than this is refused while it is read, before it is expanded.
MAX_LIST_VALUES = 100_000
# MXNet keeps device ids as int32 and sizes per-device tables by the id (cpu:2147483647 fails with
# std::bad_alloc); no machine has more devices than this.
MAX_DEVICE_ID = 1023
# MXNet indexes an array with int32 unless built with large-tensor support: no parameter array may be larger.
MAX_ARRAY_ELEMENTS = 2**31 - 1
PARAMETER_COPIES = 4  # a parameter while training: its value, its gradient and up to two optimizer states
GLUON_REFERENCE_OPTIMIZERS = ("adam", "sgd")  # what gluon_reference.train_gluon_reference (the original's loop) runs
# cell='native' (and 'auto') keeps about 12 KB per step for hidden sizes 10, 20, 1 whatever the number of windows
# (measured at 2 to 16 windows of 20000 to 100000 steps): taken 5 KB per step and layer.
NATIVE_BYTES_PER_LAYER_STEP = 5_000
# Threads of one native operator call (a positive integer; 1 = MXNet's engine worker alone), read by the C++
# operator when it first shares a call; unset or invalid: min(2, hardware threads). Only calls of at least 160
# (blocks of 16 windows x steps) are shared, e.g. 300 windows of length 9. Results are bit-identical for any count.
NATIVE_THREADS_ENV = "SINLSTM_NATIVE_THREADS"

# --- series (sinlstm_sym.series, own_series) -----------------------------------
# statsmodels' ARIMA/ETS references fit on at most this many of the latest training points (an ARIMA fit of
# 5000 points takes about 25 s on one core); shorter training parts are used whole.
REFERENCE_MAX_HISTORY = 5000
# ... and forecast from at most this many of the latest points of each origin's history: the cost of a forecast
# grows with the history (about 50 ms for 5000 points), while the forecast depends on the recent past only
# (exactly for the AR models once the history holds p points, up to a weight of (1 - alpha)**500 for ETS).
REFERENCE_FORECAST_HISTORY = 500
# The references filter each forecast origin's history once (measured: ARIMA about 25 ms, ETS about 3 ms an
# origin on one core): beyond this many origins (held-out points of all series, about two minutes) they are
# skipped with a warning; the model and the baselines still run.
REFERENCE_MAX_ORIGINS = 5000
# a forecast rolled on its own outputs: one model call per step (about 0.1 ms each), so at most this many steps
MAX_FORECAST_STEPS = 100_000

# OpenMP threads of MXNet's operators while fit trains (its operators are tiny: more threads only spin against
# the Python thread); OMP_NUM_THREADS still governs everything outside fit.
TRAINING_OMP_THREADS = 1
# How many batches of windows the built-in iterator generates in one vectorised call.
WINDOW_CHUNK_BATCHES = 64
# How many batches' loss differences the fit loop holds on the device before reducing them (log points,
# every 100 batches by default, reduce them first; this bounds the memory of long log windows).
LOSS_CONDENSE_BATCHES = 256
