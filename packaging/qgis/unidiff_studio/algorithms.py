"""One Processing algorithm per headless command of unidiff-studio
(`unidiff:predict`, `unidiff:classify`, `unidiff:stats`, `unidiff:sample`,
`unidiff:postprocess`, `unidiff:vectorize`, `unidiff:render`): QGIS
parameters in, the command's arguments out, its files as the outputs QGIS
loads. Each writes exactly what the command line writes. And
`unidiff:layergroup`: a results folder as one layer group (results.qlr)."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from .binary import run_command
from .layers import layer_file

ICON = os.path.join(os.path.dirname(__file__), "icon.svg")
CLASSIFIERS = ["mlp", "rf", "filter-rf"]
BACKBONES = ["tiny-random", "random"]
PRESETS = ["auto", "berlin", "augsburg", "sentinel2"]


class UnidiffAlgorithm(QgsProcessingAlgorithm):
    """What every algorithm shares: its command, group, help and icon."""

    command = ""
    title = ""
    help = ""

    def name(self):
        return self.command

    def displayName(self):  # noqa: N802 (QGIS's name)
        return self.title

    def group(self):
        return "Land cover"

    def groupId(self):  # noqa: N802 (QGIS's name)
        return "landcover"

    def shortHelpString(self):  # noqa: N802 (QGIS's name)
        return self.help

    def icon(self):
        return QIcon(ICON)

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)()

    # Helpers for the subclasses.

    def raster(self, parameters, name, context, what):
        layer = self.parameterAsRasterLayer(parameters, name, context)
        return layer_file(layer, what)

    def any_layer(self, parameters, name, context, what):
        layer = self.parameterAsLayer(parameters, name, context)
        return layer_file(layer, what)

    def add_scene_parameters(self):
        self.addParameter(QgsProcessingParameterRasterLayer("HSI", "Hyperspectral / multispectral cube", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer("SAR", "SAR image", optional=True))

    def scene_arguments(self, parameters, context):
        """`--hsi H --sar S` of the scene's layers (one of them at least)."""
        hsi = self.raster(parameters, "HSI", context, "HSI")
        sar = self.raster(parameters, "SAR", context, "SAR")
        if hsi is None and sar is None:
            raise QgsProcessingException("give the scene's cube (HSI) and/or its SAR image")
        return (["--hsi", hsi] if hsi else []) + (["--sar", sar] if sar else [])

    def folder(self, parameters, name, context):
        path = self.parameterAsString(parameters, name, context)
        if path == QgsProcessing.TEMPORARY_OUTPUT or not path:
            path = self.parameterAsFileOutput(parameters, name, context)
        return path

    def load(self, context, path, name, output):
        """Loads `path` into the project when the algorithm ends."""
        details = QgsProcessingContext.LayerDetails(name, context.project(), output)
        context.addLayerToLoadOnCompletion(path, details)


class Predict(UnidiffAlgorithm):
    command = "predict"
    title = "Apply a trained model (predict)"
    help = (
        "Maps a scene with a model trained by UniDiff Studio (a .udmodel file from "
        "'Save model…' in the app or `unidiff-studio run --save-model`), tile by tile, "
        "so a scene of any size fits the memory. Give the scene's cube and/or SAR image "
        "as the model was trained (same sensor and bands). The output folder receives "
        "classmap.tif (with its colour table and class names), probability.tif (max "
        "probability, entropy), areas.csv and, unless 'No polygons', classmap.gpkg; it "
        "is written whole or not at all."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterFile("MODEL", "Trained model", extension="udmodel"))
        self.add_scene_parameters()
        self.addParameter(
            QgsProcessingParameterNumber("TILE", "Tile side (pixels)", QgsProcessingParameterNumber.Integer, 1024, minValue=1)
        )
        self.addParameter(QgsProcessingParameterBoolean("NO_POLYGONS", "No polygons (classmap.gpkg)", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("CLASSMAP", "Class map"))
        self.addOutput(QgsProcessingOutputRasterLayer("PROBABILITY", "Probability and entropy"))
        self.addOutput(QgsProcessingOutputFile("AREAS", "Class areas (CSV)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.folder(parameters, "OUTPUT", context)
        args = ["predict", "--model", self.parameterAsFile(parameters, "MODEL", context)]
        args += self.scene_arguments(parameters, context)
        args += ["--tile", self.parameterAsInt(parameters, "TILE", context)]
        if self.parameterAsBool(parameters, "NO_POLYGONS", context):
            args.append("--no-polygons")
        run_command(args + ["--out", out], feedback)
        classmap = os.path.join(out, "classmap.tif")
        self.load(context, classmap, "class map", "CLASSMAP")
        return {
            "OUTPUT": out,
            "CLASSMAP": classmap,
            "PROBABILITY": os.path.join(out, "probability.tif"),
            "AREAS": os.path.join(out, "areas.csv"),
        }


class Classify(UnidiffAlgorithm):
    command = "classify"
    title = "Classify with training labels (run)"
    help = (
        "Stage B of UniDiff (frozen diffusion features and a small MLP head) or a random "
        "forest, trained on sparse labels: a label raster on the scene's grid (0 = "
        "unlabelled, classes 1..K) or a point/polygon layer with the class in 'Class "
        "field'. With test labels each classifier is scored on them (OA, kappa, mF1, "
        "mIoU in metrics.csv). Without a checkpoint the backbone is seeded random "
        "weights, not the paper's pretrained one: its maps are not the paper's. The "
        "output folder holds what `unidiff-studio run` writes, run.json included."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.add_scene_parameters()
        self.addParameter(QgsProcessingParameterMapLayer("TRAIN_LABELS", "Training labels (raster, points or polygons)"))
        self.addParameter(QgsProcessingParameterMapLayer("TEST_LABELS", "Test labels", optional=True))
        self.addParameter(QgsProcessingParameterString("CLASS_FIELD", "Class field of vector labels", optional=True))
        self.addParameter(
            QgsProcessingParameterNumber("LABEL_OFFSET", "Added to every label value (1 for masks with classes from 0)", QgsProcessingParameterNumber.Integer, 0)
        )
        self.addParameter(QgsProcessingParameterEnum("CLASSIFIER", "Classifier", CLASSIFIERS, defaultValue=0))
        self.addParameter(QgsProcessingParameterFile("CHECKPOINT", "Backbone checkpoint (empty: a random backbone)", optional=True))
        self.addParameter(QgsProcessingParameterEnum("BACKBONE", "Random backbone (without a checkpoint)", BACKBONES, defaultValue=0))
        self.addParameter(
            QgsProcessingParameterNumber("T", "Diffusion timestep t", QgsProcessingParameterNumber.Integer, 300, minValue=0, maxValue=999)
        )
        self.addParameter(
            QgsProcessingParameterNumber("STRIDE", "Patch stride (0: half the patch)", QgsProcessingParameterNumber.Integer, 0, minValue=0)
        )
        self.addParameter(QgsProcessingParameterNumber("SEED", "Seed", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber("TREES", "Trees of the random forests", QgsProcessingParameterNumber.Integer, 200, minValue=1))
        self.addParameter(QgsProcessingParameterBoolean("NO_BASELINE", "Do not run the forests beside the MLP", False))
        self.addParameter(
            QgsProcessingParameterFileDestination("SAVE_MODEL", "Trained model", "UniDiff model (*.udmodel)", optional=True, createByDefault=False)
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("CLASSMAP", "Class map"))
        self.addOutput(QgsProcessingOutputVectorLayer("METRICS", "Metrics (table)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.folder(parameters, "OUTPUT", context)
        args = ["run"] + self.scene_arguments(parameters, context)
        args += ["--train-labels", self.any_layer(parameters, "TRAIN_LABELS", context, "training labels")]
        test = self.any_layer(parameters, "TEST_LABELS", context, "test labels")
        args += ["--test-labels", test] if test else []
        field = self.parameterAsString(parameters, "CLASS_FIELD", context)
        args += ["--class-field", field] if field else []
        args += ["--label-offset", self.parameterAsInt(parameters, "LABEL_OFFSET", context)]
        args += ["--classifier", CLASSIFIERS[self.parameterAsEnum(parameters, "CLASSIFIER", context)]]
        checkpoint = self.parameterAsFile(parameters, "CHECKPOINT", context)
        if checkpoint:
            args += ["--checkpoint", checkpoint]
        else:
            args += ["--backbone", BACKBONES[self.parameterAsEnum(parameters, "BACKBONE", context)]]
        args += ["--t", self.parameterAsInt(parameters, "T", context)]
        stride = self.parameterAsInt(parameters, "STRIDE", context)
        args += ["--stride", stride] if stride > 0 else []
        args += ["--seed", self.parameterAsInt(parameters, "SEED", context)]
        args += ["--trees", self.parameterAsInt(parameters, "TREES", context)]
        if self.parameterAsBool(parameters, "NO_BASELINE", context):
            args.append("--no-baseline")
        model = self.parameterAsFileOutput(parameters, "SAVE_MODEL", context)
        args += ["--save-model", model] if model else []
        run_command(args + ["--out", out], feedback)
        classmap = os.path.join(out, "classmap.tif")
        self.load(context, classmap, "class map", "CLASSMAP")
        metrics = os.path.join(out, "metrics.csv")
        results = {"OUTPUT": out, "CLASSMAP": classmap}
        if os.path.exists(metrics):
            self.load(context, metrics, "metrics", "METRICS")
            results["METRICS"] = metrics
        return results


class Stats(UnidiffAlgorithm):
    command = "stats"
    title = "Areas and area-adjusted accuracy (stats)"
    help = (
        "A class map's areas (areas.csv) and, with a reference, its area-adjusted "
        "accuracy (Olofsson et al. 2014; accuracy.json): overall, user's and producer's "
        "accuracy and the class areas with 95 % intervals, the map classes as strata. "
        "The reference is a label raster on the map's grid (every labelled pixel a "
        "sample point) or a point layer such as 'Stratified sample' writes, with the "
        "class in 'Class field'."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("CLASSMAP", "Class map"))
        self.addParameter(QgsProcessingParameterMapLayer("REFERENCE", "Reference (raster or points)", optional=True))
        self.addParameter(QgsProcessingParameterString("CLASS_FIELD", "Class field of reference points", "reference"))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputFile("ACCURACY", "Accuracy (JSON)"))
        self.addOutput(QgsProcessingOutputVectorLayer("AREAS", "Class areas (table)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.folder(parameters, "OUTPUT", context)
        args = ["stats", "--classmap", self.raster(parameters, "CLASSMAP", context, "class map")]
        reference = self.any_layer(parameters, "REFERENCE", context, "reference")
        if reference:
            args += ["--reference", reference]
            args += ["--class-field", self.parameterAsString(parameters, "CLASS_FIELD", context)]
        run_command(args + ["--out", out], feedback)
        areas = os.path.join(out, "areas.csv")
        self.load(context, areas, "class areas", "AREAS")
        results = {"OUTPUT": out, "AREAS": areas}
        accuracy = os.path.join(out, "accuracy.json")
        if os.path.exists(accuracy):
            results["ACCURACY"] = accuracy
        return results


class Sample(UnidiffAlgorithm):
    command = "sample"
    title = "Stratified validation sample (sample)"
    help = (
        "A stratified random sample of a class map: 'Points per class' points in each "
        "map class (all pixels of a smaller class), as a GeoPackage with the layers "
        "'sample' (the points to label, with an empty 'reference' field) and 'design' "
        "(each stratum's size and weight). Label the points (in QGIS or in the app) and "
        "give the layer to 'Areas and area-adjusted accuracy'."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("CLASSMAP", "Class map"))
        self.addParameter(QgsProcessingParameterNumber("PER_CLASS", "Points per class", QgsProcessingParameterNumber.Integer, 50, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("SEED", "Seed", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Sample", "GeoPackage (*.gpkg)"))
        self.addOutput(QgsProcessingOutputVectorLayer("SAMPLE", "Sample points"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        args = ["sample", "--classmap", self.raster(parameters, "CLASSMAP", context, "class map")]
        args += ["--per-class", self.parameterAsInt(parameters, "PER_CLASS", context)]
        args += ["--seed", self.parameterAsInt(parameters, "SEED", context)]
        run_command(args + ["--out", out], feedback)
        layer = f"{out}|layername=sample"
        self.load(context, layer, "validation sample", "SAMPLE")
        return {"OUTPUT": out, "SAMPLE": layer}


class Postprocess(UnidiffAlgorithm):
    command = "postprocess"
    title = "Clean a class map (postprocess)"
    help = (
        "GDAL's sieve to a minimum mapping unit (in pixels, or in hectares converted "
        "with the map's pixel area; regions smaller join their largest neighbour), "
        "then optionally a K x K majority filter. 0 leaves a step out."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("CLASSMAP", "Class map"))
        self.addParameter(QgsProcessingParameterNumber("SIEVE", "Minimum mapping unit (pixels; 0: none)", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber("SIEVE_HA", "Minimum mapping unit (ha; 0: none)", QgsProcessingParameterNumber.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum("CONNECTIVITY", "Connectivity of the sieve", ["4", "8"], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber("MAJORITY", "Majority filter size K (odd; 0: none)", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Cleaned class map"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        args = ["postprocess", "--classmap", self.raster(parameters, "CLASSMAP", context, "class map")]
        sieve = self.parameterAsInt(parameters, "SIEVE", context)
        sieve_ha = self.parameterAsDouble(parameters, "SIEVE_HA", context)
        majority = self.parameterAsInt(parameters, "MAJORITY", context)
        if sieve > 0:
            args += ["--sieve", sieve]
        if sieve_ha > 0:
            args += ["--sieve-ha", repr(sieve_ha)]
        if sieve > 0 or sieve_ha > 0:
            args += ["--connectivity", ["4", "8"][self.parameterAsEnum(parameters, "CONNECTIVITY", context)]]
        if majority > 0:
            args += ["--majority", majority]
        run_command(args + ["--out", out], feedback)
        return {"OUTPUT": out}


class Vectorize(UnidiffAlgorithm):
    command = "vectorize"
    title = "Class map to polygons (vectorize)"
    help = (
        "The class map as polygons by GDAL's polygonize, in the GeoPackage layer "
        "'landcover' with the class, its name and its area in ha (true ellipsoid areas "
        "in a geographic CRS); 'Dissolve' adds 'landcover_dissolved', one multipolygon "
        "per class."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("CLASSMAP", "Class map"))
        self.addParameter(QgsProcessingParameterBoolean("DISSOLVE", "Dissolve: one multipolygon per class", False))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Polygons", "GeoPackage (*.gpkg)"))
        self.addOutput(QgsProcessingOutputVectorLayer("POLYGONS", "Land cover polygons"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        args = ["vectorize", "--classmap", self.raster(parameters, "CLASSMAP", context, "class map")]
        if self.parameterAsBool(parameters, "DISSOLVE", context):
            args.append("--dissolve")
        run_command(args + ["--out", out], feedback)
        layer = f"{out}|layername=landcover"
        self.load(context, layer, "land cover", "POLYGONS")
        return {"OUTPUT": out, "POLYGONS": layer}


class Render(UnidiffAlgorithm):
    command = "render"
    title = "pRGB, PCA and Pauli renderings (render)"
    help = (
        "The renderings the diffusion backbone sees: pseudo-RGB of three cube bands "
        "(chosen from the wavelengths or band names, a preset, or 'RGB bands' as "
        "r,g,b, 0-based), the first three principal components, and the Pauli "
        "rendering of the SAR image; as PNGs and GeoTIFFs with a report."
    )

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.add_scene_parameters()
        self.addParameter(QgsProcessingParameterString("RGB_BANDS", "pRGB bands r,g,b (0-based; empty: chosen)", optional=True))
        self.addParameter(QgsProcessingParameterEnum("PRESET", "pRGB preset", PRESETS, defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputFolder("FOLDER", "Renderings"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = self.folder(parameters, "OUTPUT", context)
        args = ["render"] + self.scene_arguments(parameters, context)
        bands = self.parameterAsString(parameters, "RGB_BANDS", context)
        args += ["--rgb-bands", bands] if bands else []
        preset = PRESETS[self.parameterAsEnum(parameters, "PRESET", context)]
        args += ["--preset", preset] if preset != "auto" else []
        run_command(args + ["--out", out], feedback)
        return {"OUTPUT": out, "FOLDER": out}


class LayerGroup(UnidiffAlgorithm):
    command = "layergroup"
    title = "Results folder as a layer group"
    help = (
        "A folder that 'Export results…' in the app, `unidiff-studio run` or `predict` "
        "wrote, as one layer group: the class map (styled by its .qml: colours and "
        "class names), the cleaned map, the probability and entropy, the polygons and "
        "the other classifiers' maps. Writes the group as a layer definition "
        "(results.qlr in the folder, with paths relative to it: drag it into any "
        "project, also after moving the folder) and adds it to this project."
    )

    def flags(self):
        # Layers are made and added on QGIS's main thread.
        return super().flags() | QgsProcessingAlgorithm.FlagNoThreading

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(
            QgsProcessingParameterFile("FOLDER", "Results folder", behavior=QgsProcessingParameterFile.Folder)
        )
        self.addOutput(QgsProcessingOutputFile("OUTPUT", "Layer definition (results.qlr)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        from qgis.core import QgsLayerDefinition, QgsLayerTreeGroup, QgsRasterLayer, QgsVectorLayer

        folder = self.parameterAsFile(parameters, "FOLDER", context)
        layers = []
        for sub, label in [("", "")] + [
            (d, d.replace("baseline_", "").replace("_", "-") + " ")
            for d in sorted(os.listdir(folder))
            if d.startswith("baseline_") and os.path.isdir(os.path.join(folder, d))
        ]:
            base = os.path.join(folder, sub)
            for name, title in (
                ("classmap_cleaned.tif", "cleaned class map"),
                ("classmap.tif", "class map"),
                ("probability.tif", "probability and entropy"),
            ):
                path = os.path.join(base, name)
                if os.path.exists(path):
                    layers.append(QgsRasterLayer(path, label + title, "gdal"))
            gpkg = os.path.join(base, "classmap.gpkg")
            if os.path.exists(gpkg):
                layers.append(QgsVectorLayer(f"{gpkg}|layername=landcover", label + "polygons", "ogr"))
        if not layers:
            raise QgsProcessingException(f"{folder} holds no classmap.tif: not a results folder")
        for layer in layers:
            if not layer.isValid():
                raise QgsProcessingException(f"{layer.source()}: QGIS cannot open it")
        group = QgsLayerTreeGroup(f"UniDiff results: {os.path.basename(os.path.normpath(folder))}")
        for i, layer in enumerate(layers):
            # Only the delivered map shows: the first, the cleaned one if any.
            group.addLayer(layer).setItemVisibilityChecked(i == 0)
        qlr = os.path.join(folder, "results.qlr")
        ok, message = QgsLayerDefinition.exportLayerDefinition(qlr, [group])
        if not ok:
            raise QgsProcessingException(f"cannot write {qlr}: {message}")
        feedback.pushInfo(f"wrote {qlr} ({len(layers)} layers)")
        project = context.project()
        if project is not None:
            ok, message = QgsLayerDefinition.loadLayerDefinition(qlr, project, project.layerTreeRoot())
            if not ok:
                raise QgsProcessingException(f"cannot add {qlr} to the project: {message}")
        return {"OUTPUT": qlr}


ALL = [Predict, Classify, Stats, Sample, Postprocess, Vectorize, Render, LayerGroup]
