"""lensfind.training.architectures: shapes, registry errors, hook-friendliness, size."""

import pytest

torch = pytest.importorskip("torch")

from lensfind.training.architectures import (  # noqa: E402
    architecture_names,
    build_model,
)

NAME = "lensfind_des_compact"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(NAME, 4, 100).eval()


@pytest.mark.parametrize("n", [1, 3])
def test_maps_cutouts_to_one_logit_each(model, n):
    x = torch.randn(n, 4, 100, 100)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (n,)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_batch_independent_in_eval(model):
    x = torch.randn(3, 4, 100, 100)
    with torch.inference_mode():
        whole = model(x)
        single = torch.stack([model(x[i : i + 1])[0] for i in range(3)])
    torch.testing.assert_close(whole, single, rtol=1e-5, atol=1e-5)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        build_model("no_such_net", 4, 100)
    msg = str(info.value)
    assert "'no_such_net'" in msg
    for name in architecture_names():
        assert name in msg
    assert NAME in architecture_names()


def test_no_module_instance_is_reused(model):
    # model.modules() de-duplicates; named_modules(remove_duplicate=False) does not
    all_modules = [m for _, m in model.named_modules(remove_duplicate=False)]
    ids = [id(m) for m in all_modules]
    dupes = sorted({type(m).__name__ for m in all_modules if ids.count(id(m)) > 1})
    assert len(ids) == len(set(ids)), f"module instances used more than once: {dupes}"
    assert len(list(model.modules())) == len(all_modules)


def test_no_inplace_activations(model):
    inplace = [name for name, m in model.named_modules() if getattr(m, "inplace", False)]
    assert not inplace, f"in-place modules break hook-based saliency: {inplace}"
    assert any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_parameter_count_is_small(model):
    n = sum(p.numel() for p in model.parameters())
    assert n < 1_000_000, f"{NAME} has {n} parameters (limit 1e6)"
    print(f"{NAME}: {n} parameters")


def test_other_input_sizes():
    m = build_model(NAME, 1, 66).eval()
    with torch.inference_mode():
        assert m(torch.randn(2, 1, 66, 66)).shape == (2,)
