"""UniDiff Studio for QGIS: a Processing provider whose algorithms run the
installed ``unidiff-studio`` binary, and "Open in UniDiff Studio" for raster
layers. QGIS calls ``classFactory`` when it loads the plugin."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import UnidiffPlugin

    return UnidiffPlugin(iface)
