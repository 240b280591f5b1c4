"""The plugin QGIS loads: registers the Processing provider (also under
``qgis_process``, where there is no interface) and, in the desktop, the
"Open in UniDiff Studio" action on raster layers."""

from qgis.core import QgsApplication, QgsMapLayer

from .provider import UnidiffProvider


class UnidiffPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.open_action = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        self.provider = UnidiffProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS's name)
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtWidgets import QAction

        from .open_in_app import open_layer_in_app

        self.open_action = QAction("Open in UniDiff Studio", self.iface.mainWindow())
        self.open_action.triggered.connect(
            lambda: open_layer_in_app(self.iface.activeLayer(), self.iface.messageBar())
        )
        self.iface.addCustomActionForLayerType(
            self.open_action, "", QgsMapLayer.RasterLayer, True
        )

    def unload(self):
        if self.open_action is not None and self.iface is not None:
            self.iface.removeCustomActionForLayerType(self.open_action)
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
