"""Public jet taggers through from_pytorch: compiled at one batch size, checked at another against
torch (1e-4 relative, same argmax), on llvm and in the C simulation. See zoo.py for the models."""
import pytest

from common import CHECK_BATCH, check_csim, check_llvm
from zoo import ZOO, inputs, model


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_on_llvm(name):
    check_llvm(model(name), inputs(name, CHECK_BATCH))


@pytest.mark.slow
@pytest.mark.csim
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_in_csim(name):
    check_csim(model(name), inputs(name, 2))
