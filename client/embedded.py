"""`Tagger`: the classify API in this process, no HTTP, with the service's own code.

Images are decoded and preprocessed by `app.core.decoding.decode_all` and the version is loaded
and warmed by `app.core.servable.load_and_warm` (ONNX Runtime or TensorFlow, as TAGGER_RUNTIME
chooses for the service), so labels and confidences are the service's. Needs the serving
install (`pip install cnn-tagger`); the HTTP client does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from app.config import Settings
from app.core.decode_budget import DecodeBudget
from app.core.decoding import Upload, decode_all
from app.core.errors import InvalidInput, ServingError
from app.core.runtime import LoadedModel
from app.core.servable import load_and_warm
from app.metrics import Metrics
from client.errors import ImageRejected, RequestRejected, TaggerError
from client.images import ImageInput, UnreadableInput, encode
from client.loop_thread import LoopThread
from client.results import ImageResult, Prediction
from model_store.errors import ModelStoreError
from model_store.store import ModelStore

T = TypeVar("T")


class Tagger:
    """One model version loaded in process. Build with `Tagger.from_store`; `close()` (or use it
    as a context manager) to free the model and its threads."""

    def __init__(self, model: LoadedModel, settings: Settings, batch_size: int) -> None:
        self.model = model
        self.settings = settings
        self.batch_size = batch_size
        self._metrics = Metrics()  # a private registry: nothing is exported from here
        self._executor = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        self._runner = LoopThread("tagger-decode")

        async def budget() -> DecodeBudget:
            return DecodeBudget(settings.max_decode_bytes)

        self._budget = self._call(budget())

    @classmethod
    def from_store(
        cls,
        store: str | Path | ModelStore,
        model: str = "fashion",
        ref: int | str = "latest",
        *,
        settings: Settings | None = None,
        batch_size: int | None = None,
    ) -> Tagger:
        """Load `model` at `ref` ("latest", a version number or an alias) from a model store.

        `settings` default to the service's (TAGGER_* variables: runtime, threads, image
        limits); `batch_size` to TAGGER_MAX_BATCH_SIZE.
        """
        store = store if isinstance(store, ModelStore) else ModelStore(store)
        settings = settings or Settings(model_store=store.root)
        try:
            version = store.resolve(model, ref)
            loaded = load_and_warm(settings, store, model, version, None)
        except ModelStoreError as exc:
            raise RequestRejected(str(exc), exc.code) from exc
        return cls(loaded, settings, batch_size or settings.max_batch_size)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> int:
        return self.model.version

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def __enter__(self) -> Tagger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._runner.closed:
            return
        self._runner.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(work)

    def classify(self, images: Iterable[ImageInput], top_k: int = 5) -> list[ImageResult]:
        """One result per image, in order, as the service would answer it; an image the service
        would refuse gets a result with `error` (the service's code and message)."""
        labels = self.labels
        if not 1 <= top_k <= len(labels):
            raise RequestRejected(
                f"top_k must be between 1 and {len(labels)} (the number of labels); got {top_k}",
                "invalid_top_k",
            )
        images = list(images)
        decoded = self._call(self._decode(images))
        good = [i for i, item in enumerate(decoded) if isinstance(item, np.ndarray)]
        probabilities = np.zeros((len(images), len(labels)), np.float32)
        for start in range(0, len(good), self.batch_size):
            batch = good[start : start + self.batch_size]
            rows = self.model.predict(np.stack([decoded[i] for i in batch]))
            self.model.check_output(len(batch), rows)
            probabilities[batch] = rows
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
        results = []
        for item, best, row in zip(decoded, order.tolist(), probabilities.tolist(), strict=True):
            if isinstance(item, ImageRejected):
                results.append(ImageResult((), self.name, None, item))
            else:
                predictions = tuple(Prediction(labels[i], row[i]) for i in best)
                results.append(ImageResult(predictions, self.name, self.version))
        return results

    async def _decode(self, images: Sequence[ImageInput]) -> list[np.ndarray | ImageRejected]:
        """Each image decoded on its own, as a one-image request to the service would be, so a
        bad one fails alone with the service's message."""

        async def one(index: int, image: ImageInput) -> np.ndarray | ImageRejected:
            try:
                encoded = encode(image, index)
            except UnreadableInput as exc:
                return ImageRejected(str(exc), "unreadable_input")
            try:
                (pixels,) = await decode_all(
                    [Upload(encoded.data, encoded.name)],
                    self.model.metadata,
                    self.settings,
                    self._metrics,
                    self._executor,
                    self._budget,
                )
            except InvalidInput as exc:
                return ImageRejected(exc.message, exc.code)
            except ServingError as exc:  # the deadline, for an image that decodes too slowly
                raise TaggerError(exc.message, exc.code) from exc
            return pixels

        return list(await asyncio.gather(*(one(i, image) for i, image in enumerate(images))))
