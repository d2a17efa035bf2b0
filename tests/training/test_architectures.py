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


# --- the registry: every architecture ---------------------------------------------

from lensfind.errors import ConfigError  # noqa: E402
from lensfind.surveys import get_survey  # noqa: E402
from lensfind.training.architectures import (  # noqa: E402
    ARCHITECTURES,
    LensfindDESCompact,
    WildeCNN,
    list_architectures,
    ou66,
    ou200,
)

REGISTRY_NAMES = [
    "ou66",
    "ou200",
    "ou66_j",
    "ou66_y",
    "ou66_h",
    "ou66_jyh",
    "ou200_vis",
    "jacobs_des",
    "resnet18_1band",
    "resnet_small_1band",
    "lensfind_des_compact",
]
_CACHE: dict = {}


def _paper_model(name):
    """The model of ``name`` at its paper input, seeded, in eval mode (built once)."""
    if name not in _CACHE:
        torch.manual_seed(1)
        with torch.inference_mode(False):  # parameters usable with autograd later
            _CACHE[name] = build_model(name).eval()
    return _CACHE[name]


def _paper_input(name, n=2, seed=0):
    info = ARCHITECTURES[name]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(info.bands), info.size_px, info.size_px, generator=g)


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_registry_names_and_listing():
    assert sorted(REGISTRY_NAMES) == architecture_names()
    assert [i.name for i in list_architectures()] == architecture_names()
    for name, info in ARCHITECTURES.items():
        assert info.name == name
        assert info.paper and info.output and info.bands and info.size_px > 0
    with pytest.raises(TypeError):
        ARCHITECTURES["new"] = ARCHITECTURES["ou66"]  # read-only


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_forward_shape_at_paper_input(name):
    x = _paper_input(name)
    with torch.inference_mode():
        y = _paper_model(name)(x)
    assert y.shape == (2,)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_batch_safe_in_eval(name):
    model = _paper_model(name)
    x = _paper_input(name, n=3, seed=4)
    with torch.inference_mode():
        whole = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(whole, single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_no_module_reuse_and_no_inplace(name):
    model = _paper_model(name)
    listed = [m for _, m in model.named_modules(remove_duplicate=False)]
    assert len(listed) == len({id(m) for m in listed}) == len(list(model.modules()))
    inplace = [n for n, m in model.named_modules() if getattr(m, "inplace", False)]
    assert not inplace, f"{name}: in-place modules {inplace}"
    assert any(isinstance(m, torch.nn.ReLU) for m in model.modules())


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_backward_hooks_on_every_relu(name):
    # what hook-based saliency does: a full backward hook on each activation; an
    # in-place ReLU (or one module used twice) breaks or double-counts it
    model = _paper_model(name)
    seen: list[str] = []
    relus = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
    hooks = [
        m.register_full_backward_hook(lambda _m, _gi, _go, n=n: seen.append(n)) for n, m in relus
    ]
    try:
        x = _paper_input(name).requires_grad_(True)
        model(x).sum().backward()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    assert sorted(seen) == sorted(n for n, _ in relus)
    assert x.grad is not None and torch.isfinite(x.grad).all()


# --- Wilde et al. 2022: OU-66 and OU-200 ------------------------------------------

# Written out from Tables 3 and 4: Sequential index -> (out, in, k, k) of each conv.
OU66_CONVS = {
    0: (50, 4, 3, 3),
    4: (50, 50, 3, 3),
    7: (50, 50, 3, 3),
    10: (50, 50, 3, 3),
    13: (40, 50, 3, 3),
    17: (40, 40, 3, 3),
    20: (40, 40, 3, 3),
    23: (40, 40, 3, 3),
    26: (30, 40, 3, 3),
}
OU66_POOLS = {2, 15, 28}
OU66_FC = {0: (500, 120), 2: (2, 500)}
OU200_CONVS = {
    0: (50, 4, 5, 5),
    4: (40, 50, 5, 5),
    8: (30, 40, 3, 3),
    12: (20, 30, 3, 3),
    16: (20, 20, 3, 3),
    19: (20, 20, 3, 3),
}
OU200_POOLS = {2, 6, 10, 14}
OU200_FC = {0: (350, 720), 2: (2, 350)}
PAPER = {
    "ou66": (OU66_CONVS, OU66_POOLS, OU66_FC, 66),
    "ou200": (OU200_CONVS, OU200_POOLS, OU200_FC, 200),
}


def _published_state_dict(name, seed=0):
    """A state dict with exactly the keys and shapes of the authors' weights."""
    convs, _, fcs, _ = PAPER[name]
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i, shape in convs.items():
        fan_in = shape[1] * shape[2] * shape[3]
        sd[f"layer.{i}.weight"] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
        sd[f"layer.{i}.bias"] = 0.1 * torch.randn(shape[0], generator=g)
    for i, shape in fcs.items():
        sd[f"fc_layer.{i}.weight"] = torch.randn(shape, generator=g) * (2 / shape[1]) ** 0.5
        sd[f"fc_layer.{i}.bias"] = 0.1 * torch.randn(shape[0], generator=g)
    return sd


def _reference_class_logits(name, sd, x):
    """Tables 3/4 evaluated with torch.nn.functional (dropout is identity in eval)."""
    convs, pools, _, _ = PAPER[name]
    F = torch.nn.functional
    for i in range(max(convs) + 3):
        if i in convs:
            x = F.relu(F.conv2d(x, sd[f"layer.{i}.weight"], sd[f"layer.{i}.bias"]))
        elif i in pools:
            x = F.max_pool2d(x, 2)
    x = torch.flatten(x, 1)
    x = F.relu(F.linear(x, sd["fc_layer.0.weight"], sd["fc_layer.0.bias"]))
    return F.linear(x, sd["fc_layer.2.weight"], sd["fc_layer.2.bias"])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ou66", 203_192),  # Wilde+22 Table 3
        ("ou200", 331_632),  # Wilde+22 Table 4
        # the variants differ only in the first convolution's input channels
        ("ou66_j", 203_192 - 3 * 9 * 50),
        ("ou66_y", 203_192 - 3 * 9 * 50),
        ("ou66_h", 203_192 - 3 * 9 * 50),
        ("ou66_jyh", 203_192 - 1 * 9 * 50),
        ("ou200_vis", 331_632 - 3 * 25 * 50),
    ],
)
def test_wilde_parameter_counts(name, expected):
    assert _n_params(_paper_model(name)) == expected


@pytest.mark.parametrize("name", ["ou66", "ou200"])
def test_wilde_published_keys_load_strictly(name):
    model = _paper_model(name)
    sd = _published_state_dict(name)
    assert set(model.state_dict()) == set(sd)  # no extra buffers or parameters
    missing, unexpected = model.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    for k, v in sd.items():
        assert torch.equal(model.state_dict()[k], v), k
    # the paper modules take the same dict
    paper = ou66() if name == "ou66" else ou200()
    paper.load_state_dict(sd, strict=True)


@pytest.mark.parametrize("name", ["ou66", "ou200"])
def test_wilde_forward_follows_the_table(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    sd = _published_state_dict(name, seed=3)
    model.load_state_dict(sd, strict=True)
    paper = (ou66() if name == "ou66" else ou200()).eval()
    paper.load_state_dict(sd, strict=True)
    x = _paper_input(name, n=2, seed=5).abs()
    with torch.inference_mode():
        ref = _reference_class_logits(name, sd, x)
        z = paper(x)
        lens_logit = model(x)
    assert z.shape == (2, 2)
    torch.testing.assert_close(z, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.class_logits(x), ref, rtol=1e-5, atol=1e-5)
    # one lens logit: index 1 is "lens"; sigmoid(z1 - z0) is the softmax lens probability
    torch.testing.assert_close(lens_logit, ref[:, 1] - ref[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        torch.sigmoid(lens_logit), torch.softmax(ref, dim=1)[:, 1], rtol=1e-5, atol=1e-6
    )


def test_wilde_paper_modules_return_two_logits():
    for factory, size in ((ou66, 66), (ou200, 200)):
        m = factory().eval()
        assert isinstance(m, WildeCNN)
        with torch.inference_mode():
            assert m(torch.randn(2, 4, size, size)).shape == (2, 2)
    assert _n_params(ou66(bands=1)) == _n_params(_paper_model("ou66_j"))


def test_wilde_layer_types_at_table_rows():
    m = _paper_model("ou66")
    nn = torch.nn
    for i, layer in enumerate(m.layer):
        if i in OU66_CONVS:
            assert isinstance(layer, nn.Conv2d) and layer.padding == (0, 0), i
            assert isinstance(m.layer[i + 1], nn.ReLU), i
        elif i in OU66_POOLS:
            assert isinstance(layer, nn.MaxPool2d) and layer.kernel_size == 2, i
        elif not isinstance(layer, nn.ReLU):
            assert isinstance(layer, nn.Dropout) and layer.p == 0.2, i
    assert len(m.layer) == 30 and isinstance(m.fc_layer[1], nn.ReLU)


# --- the other papers --------------------------------------------------------------


def test_jacobs_des_network_shape():
    m = _paper_model("jacobs_des")
    nn = torch.nn
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    dense = [x for x in m.modules() if isinstance(x, nn.Linear)]
    assert len(convs) == 10  # Jacobs+22: 10 convolutional layers
    assert [d.out_features for d in dense] == [256, 256, 1]  # two dense layers of 256
    assert convs[0].in_channels == 4
    assert _n_params(m) > 12_000_000  # "over 12 million trainable parameters"


def test_resnet18_one_band():
    m = _paper_model("resnet18_1band")
    nn = torch.nn
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d) and x.kernel_size != (1, 1)]
    assert len(convs) + 1 == 18  # 17 convolutions + the dense layer
    assert m.conv1.in_channels == 1 and m.fc.out_features == 1
    # any side works (global pooling); the survey decides
    m2 = build_model("resnet18_1band", size_px=64).eval()
    with torch.inference_mode():
        assert m2(torch.randn(2, 1, 64, 64)).shape == (2,)


def test_resnet_small_is_resnet18_at_one_eighth_width():
    big, small = _paper_model("resnet18_1band"), _paper_model("resnet_small_1band")
    nn = torch.nn
    convs = [m for m in small.modules() if isinstance(m, nn.Conv2d)]
    # same layers in the same order (17 3x3/7x7 convolutions + 3 1x1 shortcuts), 1/8 width
    assert [c.kernel_size for c in convs] == [
        c.kernel_size for c in big.modules() if isinstance(c, nn.Conv2d)
    ]
    assert [small.layer1[0].conv1.out_channels, small.layer2[0].conv1.out_channels,
            small.layer3[0].conv1.out_channels, small.layer4[0].conv1.out_channels] == [
        8, 16, 32, 64]  # fmt: skip
    assert small.state_dict().keys() == big.state_dict().keys()
    assert 150_000 < _n_params(small) < 200_000


# --- inputs from a SurveySpec -------------------------------------------------------

EUCLID = get_survey("euclid_wide")


@pytest.mark.parametrize(
    ("name", "survey", "shape"),
    [
        ("ou200", EUCLID, (4, 200)),
        ("ou200", "euclid_wide", (4, 200)),
        ("ou66", EUCLID.select(("VIS", "Y", "J", "H"), cutout_px=66), (4, 66)),
        ("ou66_j", EUCLID.select(("J",), cutout_px=66), (1, 66)),
        ("ou66_jyh", EUCLID.select(("J", "Y", "H"), cutout_px=66), (3, 66)),
        ("ou200_vis", EUCLID.select(("VIS",)), (1, 200)),
        ("jacobs_des", get_survey("des_y3"), (4, 100)),
        ("resnet18_1band", get_survey("kids_dr3"), (1, 101)),
        ("lensfind_des_compact", get_survey("des_y3"), (4, 100)),
        ("lensfind_des_compact", get_survey("kids_dr3"), (1, 101)),
    ],
)
def test_built_for_a_matching_survey(name, survey, shape):
    bands, size = shape
    model = build_model(name, survey).eval()
    with torch.inference_mode():
        assert model(torch.randn(2, bands, size, size)).shape == (2,)


@pytest.mark.parametrize(
    ("name", "survey", "words"),
    [
        ("ou66", EUCLID, ["ou66", "66x66", "euclid_wide", "200x200"]),
        ("ou66_j", EUCLID.select(("J",)), ["ou66_j", "66x66", "200x200"]),
        ("ou200", get_survey("des_y3"), ["ou200", "J, Y, H, VIS", "des_y3", "g, r, i, z"]),
        ("ou66_jyh", EUCLID.select(("VIS", "J", "H"), cutout_px=66), ["J, Y, H", "VIS, J, H"]),
        ("jacobs_des", get_survey("kids_dr3"), ["jacobs_des", "g, r, i, z", "kids_dr3"]),
        ("resnet18_1band", get_survey("des_y3"), ["resnet18_1band", "1 band", "des_y3"]),
    ],
)
def test_survey_mismatch_is_a_config_error(name, survey, words):
    with pytest.raises(ConfigError) as info:
        build_model(name, survey)
    for word in words:
        assert word in str(info.value)


def test_input_given_twice_or_wrong_size_raises():
    with pytest.raises(ConfigError, match="either a survey or bands/size_px"):
        build_model("ou200", EUCLID, size_px=200)
    with pytest.raises(ConfigError, match="66x66"):
        build_model("ou66", 4, 100)  # the older (bands, size_px) form is checked too
    with pytest.raises(ConfigError, match="expects 1 band"):
        build_model("ou66_h", bands=2)
    with pytest.raises(ConfigError, match="expects bands H"):
        build_model("ou66_h", bands=("J",))
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model("ou67")


def test_older_positional_form_still_builds():
    assert build_model("ou66", 4, 66)(torch.randn(1, 4, 66, 66)).shape == (1,)
    assert isinstance(build_model(NAME, 4, 100), LensfindDESCompact)


# --- the shipped default model is frozen -----------------------------------------

DES_COMPACT_KEYS = [
    ("features.0.weight", (16, 4, 5, 5)),
    *[
        (f"features.{i}.{p}", (c,))
        for i, c in ((1, 16), (4, 32), (8, 48), (12, 64), (16, 64))
        for p in ("weight", "bias", "running_mean", "running_var")
    ],
    *[(f"features.{i}.num_batches_tracked", ()) for i in (1, 4, 8, 12, 16)],
    ("features.3.weight", (32, 16, 3, 3)),
    ("features.7.weight", (48, 32, 3, 3)),
    ("features.11.weight", (64, 48, 3, 3)),
    ("features.15.weight", (64, 64, 3, 3)),
    ("head.2.weight", (64, 2304)),
    ("head.2.bias", (64,)),
    ("head.4.weight", (1, 64)),
    ("head.4.bias", (1,)),
]


def test_default_model_state_dict_is_unchanged():
    sd = build_model(NAME).state_dict()
    assert sorted((k, tuple(v.shape)) for k, v in sd.items()) == sorted(DES_COMPACT_KEYS)
    # same initialisation from the same seed as the class itself (training reproducible)
    torch.manual_seed(7)
    a = build_model(NAME, get_survey("des_y3")).state_dict()
    torch.manual_seed(7)
    b = LensfindDESCompact(4, 100).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
