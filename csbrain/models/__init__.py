"""CSBrain models: the backbone, task wrappers, released-checkpoint loading, our format."""

from csbrain.models.backbone import CSBrain
from csbrain.models.heads import (
                                  HEADS,
                                  CSBrainForClassification,
                                  CSBrainForPretraining,
                                  CSBrainForRegression,
)
from csbrain.models.hub import ARCHITECTURES, load_model, read_model_config, register
from csbrain.models.sequence import CSBrainForSequenceClassification

register(CSBrain)

__all__ = ["CSBrain", "CSBrainForPretraining", "CSBrainForClassification", "CSBrainForRegression",
           "CSBrainForSequenceClassification", "HEADS", "ARCHITECTURES", "load_model",
           "read_model_config"]
