"""CorrectNet (Eldebiky et al., DATE 2023): the method (`method`), its digital error-compensation
modules (`compensation`) and the REINFORCE agent that places them (`agent`)."""

from methods.correctnet.method import CorrectNet

__all__ = ["CorrectNet"]
