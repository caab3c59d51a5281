"""What the page loads besides the dashboard's own code."""


def test_the_vendored_plotly_bundle_is_the_version_the_plotly_package_draws_for():
    """Figures are built by the pinned plotly package for its own plotly.js; the page loads
    the cartesian bundle of that same version (a plotly upgrade must bring a new bundle)."""
    import re
    from pathlib import Path

    import plotly

    from dashapp.dashboard import ASSETS, PLOTLY_BUNDLE

    def version(path: Path) -> str:
        return re.search(r"plotly\.js .*?v(\d+\.\d+\.\d+)", path.read_text(errors="ignore")[:300]).group(1)

    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert version(ASSETS / "vendor" / PLOTLY_BUNDLE) == version(shipped)
