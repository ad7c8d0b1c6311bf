"""Heart works offline right after install (issue 29): the Cleveland file ships inside the
package, is checked like any other copy, and comes after the user's own copies."""
import urllib.request

import pytest
from typer.testing import CliRunner

from noharm.cli import app
from noharm.datasets import load_heart
from noharm.datasets._fetch import locate, packaged
from noharm.datasets.heart import SHA256
from noharm.errors import ChecksumError


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No NOHARM_DATA_DIR, an empty user cache, and no network."""
    monkeypatch.delenv("NOHARM_DATA_DIR", raising=False)
    monkeypatch.setenv("NOHARM_CACHE_DIR", str(tmp_path / "cache"))

    def no_network(*a, **k):
        raise AssertionError("noharm tried to download")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


def test_heart_loads_from_the_shipped_copy_offline(offline):
    c = load_heart()
    assert c.X.shape == (297, 13) and c.meta["source"] == str(packaged(
        "uci_heart", "processed.cleveland.data"))
    assert "shipped with noharm" in locate("uci_heart", "processed.cleveland.data", "http://x")


def test_the_readme_first_command_runs_offline(offline):
    out = offline / "run"
    r = CliRunner().invoke(app, ["personalize", "--dataset", "heart", "--output", str(out),
                                 "--seeds", "1", "--folds", "2", "--max-epochs", "2",
                                 "--models", "generic,conditional-bias,logreg"])
    assert r.exit_code == 0, r.output
    assert (out / "results.csv").is_file() and (out / "models/guarded/split0/guard.json").is_file()


def test_a_users_copy_wins_and_a_changed_shipped_copy_is_refused(offline, monkeypatch):
    own = offline / "data" / "uci_heart"
    own.mkdir(parents=True)
    src = packaged("uci_heart", "processed.cleveland.data")
    (own / "processed.cleveland.data").write_bytes(src.read_bytes())
    monkeypatch.setenv("NOHARM_DATA_DIR", str(offline / "data"))
    assert load_heart().meta["source"] == str(own / "processed.cleveland.data")
    monkeypatch.delenv("NOHARM_DATA_DIR")
    import noharm.datasets.heart as heart
    monkeypatch.setattr(heart, "SHA256", SHA256[::-1])      # as if the shipped file changed
    with pytest.raises(ChecksumError, match="fails its checksum"):
        heart.load_heart()
