"""A layer's file on disk, as the binary needs it: a memory, WMS or
database layer has none and is refused with the reason."""

import os

from qgis.core import QgsProcessingException, QgsProviderRegistry


def layer_file(layer, what):
    """The path of the file behind `layer` (for `what`, in the message);
    None when no layer was given."""
    if layer is None:
        return None
    provider = layer.providerType()
    if provider not in ("gdal", "ogr"):
        raise QgsProcessingException(
            f"{what}: the layer '{layer.name()}' is a {provider} layer, not a file on disk; "
            "save it as a GeoTIFF or GeoPackage first"
        )
    parts = QgsProviderRegistry.instance().decodeUri(provider, layer.source())
    path = parts.get("path") or layer.source().split("|")[0]
    if not os.path.exists(path):
        raise QgsProcessingException(
            f"{what}: the layer '{layer.name()}' reads {path}, which is not a file on disk"
        )
    return path
