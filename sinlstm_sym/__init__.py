"""sinlstm-sym: a stacked-LSTM sine predictor trained on variable-length windows with
MXNet's symbolic ``BucketingModule``."""
import os

# One "Subgraph backend MKLDNN is activated" line per bind is noise; respect a user's own setting.
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

try:
    import mxnet  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sinlstm_sym needs MXNet 1.9.1, which could not be imported "
        f"({err}). Install the CPU build with pip install 'sinlstm-sym[cpu]' (or '.[cpu]' from a checkout), "
        "or the CUDA 11.2 build with '[cu112]' -- never both.") from err

from .model.bucketing import SafeBucketingModule  # noqa: E402
from .checkpoint import load_checkpoint  # noqa: E402
from .config.fit_config import DataConfig, FitConfig, ModelConfig, OptimizerConfig, RunConfig  # noqa: E402
from .data.windows import SinBucketIter  # noqa: E402
from .infer.evaluation import evaluate  # noqa: E402
from .infer.predictor import Predictor  # noqa: E402
from .model.symbol import make_sym_gen  # noqa: E402
from .train.loop import NonFiniteLossError  # noqa: E402
from .train.fit import FitResult, fit  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ["fit", "FitConfig", "ModelConfig", "DataConfig", "OptimizerConfig", "RunConfig", "FitResult",
           "SinBucketIter", "make_sym_gen", "Predictor", "evaluate", "SafeBucketingModule", "NonFiniteLossError",
           "load_checkpoint", "__version__"]
