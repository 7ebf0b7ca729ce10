"""``gankit dataset check``: finds every file that would trouble training, with path and reason."""
from __future__ import annotations

import io
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field

from PIL import Image

from ..config import coerce
from ..errors import DataError
from . import images, parse_spec
from .folder import FolderDataset, ZipDataset, parse_labels


@dataclass
class Report:
    total: int = 0
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, reason)
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, what): no problem, worth knowing

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> Counter:
        return Counter(kind for _, kind, _ in self.problems)

    def summary(self) -> str:
        c = self.counts()
        parts = ", ".join(f"{n} {k}" for k, n in sorted(c.items())) or "no problems"
        common = ", ".join(f"{w}x{h}: {n}" for (w, h), n in self.sizes.most_common(3))
        modes = ", ".join(f"{m}: {n}" for m, n in self.modes.most_common())
        notes = Counter(kind for _, kind, _ in self.notes)
        noted = "".join(f"; {n} {k}" for k, n in sorted(notes.items()))
        return f"{self.total} files checked: {parts}{noted}. Sizes ({common}); modes ({modes})."


def check(spec: str) -> Report:
    """Opens every image of a folder or zip spec and reports unreadable, truncated, odd-mode and odd-size
    files, every problem of ``dataset.json`` (kind *label*), and as notes the photos turned upright by
    their EXIF orientation (*rotated*) and labels of files that are not there.

    A file is *odd-size* when it is not square, smaller than the target resolution (it would be
    upsampled), or (without ``res``) differs from the most common size; *odd-mode* when its mode is
    neither RGB nor L (it will be converted as the mode policy documents, 16-bit scaled to 8).
    A damaged zip member is *unreadable*; every one is listed.
    """
    source, opts = parse_spec(spec)
    if source.startswith("builtin:"):
        raise DataError("built-in datasets are generated and always valid; `dataset check` takes a folder or zip")
    if not os.path.exists(source):
        raise DataError(f"{source}: no such file or folder")
    if os.path.isdir(source):
        from pathlib import Path

        from .pairs import detect_layout, problems

        layout = opts.pop("layout", "auto")
        if detect_layout(Path(source), layout) is not None:  # two domains: pairing problems, then every file
            two = problems(source, layout)
            report = check(source + "?layout=images&size=resize" + (f"&res={opts['res']}" if "res" in opts else ""))
            report.problems = [(p, "pairing", why) for p, why in two] + \
                [x for x in report.problems if x[1] != "odd-size"]  # sizes: each domain is resized on its own
            return report
    res = coerce(opts["res"], int, "res") if "res" in opts else None
    mode = opts.get("mode", "rgb")
    images.check_policy(opts.get("size", "center-crop"), mode, res)
    lister = ZipDataset if os.path.isfile(source) else FolderDataset
    ds = lister.__new__(lister)  # only the file listing is needed, not the first decode
    ds.path = source
    names = sorted(n for n in ds._list_names() if images.is_image_name(n))
    if not names:
        raise DataError(f"{source}: no images found (looked for {', '.join(images.EXTENSIONS)}, recursively)")
    report = Report(total=len(names))
    try:
        raw = ds._read_label_file()
    except DataError as e:
        report.problems.append((f"{source}/dataset.json", "label", str(e).split(": ", 1)[-1]))
        raw = None
    if raw is not None:
        _, problems, notes = parse_labels(raw, names, source)
        report.problems.extend((where, "label", why) for where, why in problems)
        report.notes.extend((f"{source}/dataset.json", "label-note", what) for what in notes)
    seen = []
    for name in names:
        where = os.path.join(source, name) if lister is FolderDataset else f"{source}/{name}"
        try:
            data = ds._read(name)
        except OSError as e:
            report.problems.append((where, "unreadable", str(e.strerror or e)))
            continue
        except DataError as e:  # a damaged, encrypted or oddly compressed zip member
            report.problems.append((where, "unreadable", str(e).split(": ", 1)[-1]))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:
                    img.verify()
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
                    size, m = img.size, img.mode
                    turn = images.exif_orientation(img)
                    if turn not in (0, 1):
                        report.notes.append((where, "rotated", f"EXIF orientation {turn}: turned upright when read"))
                        size = images.upright(img).size
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            truncated = any(w in msg.lower() for w in ("truncat", "broken data stream", "premature end"))
            kind = "truncated" if truncated else "unreadable"
            report.problems.append((where, kind, msg))
            continue
        report.sizes[size] += 1
        report.modes[m] += 1
        seen.append((where, size, m))
    common = report.sizes.most_common(1)[0][0] if report.sizes else None
    for where, (w, h), m in seen:
        if m not in images.NATIVE_MODES[mode]:
            report.problems.append((where, "odd-mode", f"mode {m} will be converted to {mode}"))
        if w != h:
            report.problems.append((where, "odd-size", f"{w}x{h} is not square"))
        elif res is not None and w < res:
            report.problems.append((where, "odd-size", f"{w}x{h} is smaller than res={res} and would be upsampled"))
        elif res is None and (w, h) != common:
            report.problems.append((where, "odd-size", f"{w}x{h} differs from the common size {common[0]}x{common[1]}"))
    return report
