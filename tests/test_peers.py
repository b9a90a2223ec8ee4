import pytest
import torch

from hfdae.peers import DnCNN, FFDNet, load_dncnn, load_ffdnet


@pytest.mark.parametrize("channels, depth", [(1, 17), (1, 20), (3, 20)])
def test_dncnn_loader_builds_the_architecture_from_the_weights(channels, depth, tmp_path):
    torch.manual_seed(0)
    original = DnCNN(channels=channels, depth=depth).eval()
    assert sorted({key.split(".")[1] for key in original.state_dict()}, key=int)[-1] == str(2 * (depth - 1))
    torch.save(original.state_dict(), tmp_path / "dncnn.pth")
    loaded = load_dncnn(tmp_path / "dncnn.pth")
    images = torch.rand(1, channels, 19, 23)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), original(images))


def test_ffdnet_loader_and_shapes(tmp_path):
    torch.manual_seed(0)
    original = FFDNet(channels=3, depth=12, width=96).eval()
    assert original.model[0].in_channels == 13 and original.model[-1].out_channels == 12
    torch.save(original.state_dict(), tmp_path / "ffdnet.pth")
    loaded = load_ffdnet(tmp_path / "ffdnet.pth")
    images = torch.rand(1, 3, 19, 23)  # odd sizes: padded to even and cropped back
    with torch.no_grad():
        output = loaded(images, 25.0)
        torch.testing.assert_close(output, original(images, 25.0))
    assert output.shape == images.shape


def test_loaders_are_strict(tmp_path):
    state = DnCNN(channels=3, depth=20).state_dict()
    state["extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="extra"):
        load_dncnn(tmp_path / "bad.pth")
    torch.save({"model.0.bias": torch.zeros(3)}, tmp_path / "nothing.pth")
    with pytest.raises(ValueError, match="model.N.weight"):
        load_dncnn(tmp_path / "nothing.pth")
