"""Configuration: a typed dataclass schema, YAML presets (``rdfa_s6/configs``), dotted overrides."""
from .checks import config_from_dict, validate
from .loader import apply_override, config_to_dict, list_presets, load_config, parse_value
from .schema import (
    BaselineConfig,
    BranchConfig,
    Config,
    DataConfig,
    EvalConfig,
    HeadConfig,
    InferConfig,
    MixerConfig,
    ModelConfig,
    StemConfig,
    TrainConfig,
)

__all__ = [
    "BaselineConfig", "BranchConfig", "Config", "DataConfig", "EvalConfig", "HeadConfig", "InferConfig",
    "MixerConfig", "ModelConfig", "StemConfig", "TrainConfig",
    "apply_override", "config_from_dict", "config_to_dict", "list_presets", "load_config", "parse_value",
    "validate",
]
