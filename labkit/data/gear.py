"""The outdoor-gear catalog: products with near-duplicate categories, shopper queries, training pairs.

Part 6 of the course fine-tunes an *embedding* model, the search itself. That needs a catalog in
which a general-purpose embedder genuinely gets lost: trail runners, hiking boots, approach shoes,
mountaineering boots and sandals all talk about lugs, grip, trails and waterproof membranes, so
"waterproof trail runners" tends to pull up waterproof hiking boots. Rain shells, soft shells and
insulated jackets; quilts and sleeping bags; running vests and hydration packs play the same game.

The words live in ``data/gear/taxonomy.yaml`` (hand-written). :func:`generate` expands them with a
seeded RNG into products, queries (with their relevant products) and (query, product, hard
negative) triplets; the result is committed under ``data/gear/`` and :func:`load` reads it back.

Train/val/test are split by *intent*, so no test query can be learned by heart:
a (category, attribute) pair such as (trail runners, waterproof) belongs to exactly one split, and
so does each (category, use) pair of the attribute-free queries. Training still sees "waterproof
hiking boots" and "vegan trail runners"; the test asks for "waterproof trail runners". The corpus
is shared, as in real life: you tune search over your own catalog and test it on new questions.

>>> from labkit.data import gear
>>> catalog = gear.load()                              # doctest: +SKIP
>>> queries, qrels = catalog.split("test")             # doctest: +SKIP
>>> python -m labkit.data.gear [--check]               # regenerate (or verify) data/gear/
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from labkit.errors import LabkitError
from labkit.paths import data_dir

SEED = 7
PER_CATEGORY = 14
POSITIVES_PER_QUERY = 3
SPLITS = ("train", "val", "test")
FILES = ("products.jsonl", "queries.jsonl", "train_pairs.jsonl", "val_pairs.jsonl", "manifest.json")
# The seed article's failure case, pinned to the test split so the notebook can show it untrained.
PINNED_TEST = {("trail_runners", "waterproof"), ("rain_shells", "hooded")}

# Query shapes. Attribute templates say what and which kind; plain ones say what for.
ATTR_TEMPLATES = (
    "{pre} {term}",
    "{term} {post}",
    "best {pre} {term}",
    "{pre} {term} for {use}",
    "{pre} {noun} for {use}",
    "looking for {term} {post}",
    "recommend some {pre} {term}",
)
PLAIN_TEMPLATES = ("{term} for {use}", "{noun} for {use}", "what {term} should I buy for {use}")


class CatalogError(LabkitError, ValueError):
    """A catalog that cannot be used: empty, inconsistent, or with an unreadable file."""


@dataclass(frozen=True)
class Product:
    id: str
    title: str
    description: str
    category: str
    family: str
    attributes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """What the embedder sees: title and description."""
        return f"{self.title}. {self.description}"


@dataclass(frozen=True)
class GearQuery:
    id: str
    text: str
    category: str
    attribute: str | None
    use: str | None
    split: str
    relevant: tuple[str, ...]


@dataclass(frozen=True)
class Triplet:
    anchor: str
    positive: str
    negative: str
    query_id: str
    positive_id: str
    negative_id: str


@dataclass(frozen=True)
class GearCatalog:
    products: tuple[Product, ...]
    queries: tuple[GearQuery, ...]
    train_pairs: tuple[Triplet, ...]
    val_pairs: tuple[Triplet, ...]
    families: dict[str, list[str]] = field(default_factory=dict)  # family -> its categories

    def corpus(self) -> dict[str, str]:
        """Product id -> text, in catalog order."""
        return {p.id: p.text for p in self.products}

    def product(self, product_id: str) -> Product:
        return self._by_id()[product_id]

    def _by_id(self) -> dict[str, Product]:
        return {p.id: p for p in self.products}

    def split(self, name: str) -> tuple[dict[str, str], dict[str, set[str]]]:
        """(query id -> text, query id -> relevant product ids) for ``train``, ``val`` or ``test``."""
        if name not in SPLITS:
            raise CatalogError(f"split={name!r}: expected one of {', '.join(SPLITS)}")
        chosen = [q for q in self.queries if q.split == name]
        return {q.id: q.text for q in chosen}, {q.id: set(q.relevant) for q in chosen}

    def family_of(self, category: str) -> str:
        for family, categories in self.families.items():
            if category in categories:
                return family
        raise KeyError(category)

    def subset(self, families: list[str]) -> "GearCatalog":
        """Only these families' products, queries and pairs (the smoke profile uses two)."""
        unknown = sorted(set(families) - set(self.families))
        if unknown:
            raise CatalogError(f"families {unknown} not in the catalog; it has {sorted(self.families)}")
        keep = {c for f in families for c in self.families[f]}
        products = tuple(p for p in self.products if p.category in keep)
        ids = {p.id for p in products}
        return GearCatalog(
            products=products,
            queries=tuple(q for q in self.queries if q.category in keep),
            train_pairs=tuple(t for t in self.train_pairs if t.positive_id in ids and t.negative_id in ids),
            val_pairs=tuple(t for t in self.val_pairs if t.positive_id in ids and t.negative_id in ids),
            families={f: self.families[f] for f in families},
        )


# ---------------------------------------------------------------------------------------------
# generation


def read_taxonomy(path: Path | None = None) -> dict:
    path = path or data_dir() / "gear" / "taxonomy.yaml"
    with open(path, encoding="utf-8") as handle:
        taxonomy = yaml.safe_load(handle)
    for family, spec in taxonomy["families"].items():
        for category, cat in spec["categories"].items():
            missing = [a for a in cat["attributes"] if a not in spec["attributes"]]
            if missing:
                raise CatalogError(f"{path}: {family}/{category} names undefined attributes {missing}")
            if len(cat["attributes"]) < 3 or len(cat["uses"]) < 2:
                raise CatalogError(f"{path}: {family}/{category} needs >= 3 attributes and >= 2 uses "
                                   "(one each for test and val, the rest for training)")
    return taxonomy


def _products(taxonomy: dict, rng: random.Random, per_category: int) -> list[Product]:
    products: list[Product] = []
    titles: set[str] = set()
    for family, spec in taxonomy["families"].items():
        for category, cat in spec["categories"].items():
            attrs = list(cat["attributes"])
            for i in range(per_category):
                # Round-robin first, so every (category, attribute) has >= 3 products to find;
                # the last two carry no attribute; some get a second one at random.
                chosen = [attrs[i % len(attrs)]] if i < per_category - 2 else []
                if chosen and rng.random() < 0.3:
                    chosen.append(rng.choice([a for a in attrs if a != chosen[0]]))
                chosen.sort(key=attrs.index)
                title = ""
                while not title or title in titles:
                    title = f"{rng.choice(taxonomy['brands'])} {rng.choice(taxonomy['models'])} " \
                            f"{rng.choice(cat['variants'])}"
                    title += " W" if "womens" in chosen else ""
                    title += " WP" if "waterproof" in chosen else ""
                titles.add(title)
                sentences = [rng.choice(cat["core"])]
                sentences += rng.sample(spec["shared"], rng.choice((1, 2)))
                sentences += [rng.choice(spec["attributes"][a]["says"]) for a in chosen]
                rng.shuffle(sentences)
                products.append(Product(
                    id=f"g{len(products):04d}", title=title, description=" ".join(sentences),
                    category=category, family=family, attributes=tuple(chosen),
                ))
    return products


def _assign_splits(taxonomy: dict, rng: random.Random) -> dict[tuple[str, str], str]:
    """(category, attribute or use) -> split. One test and one val attribute, one test use."""
    splits: dict[tuple[str, str], str] = {}
    for spec in taxonomy["families"].values():
        for category, cat in spec["categories"].items():
            attrs = list(cat["attributes"])
            rng.shuffle(attrs)
            pinned = [a for a in attrs if (category, a) in PINNED_TEST]
            attrs = pinned + [a for a in attrs if a not in pinned]
            for k, attr in enumerate(attrs):
                splits[(category, attr)] = "test" if k == 0 else "val" if k == 1 else "train"
            uses = list(cat["uses"])
            rng.shuffle(uses)
            for k, use in enumerate(uses):
                splits[(category, "use:" + use)] = "test" if k == 0 else "train"
    return splits


def _queries(taxonomy: dict, products: list[Product], rng: random.Random) -> list[GearQuery]:
    splits = _assign_splits(taxonomy, rng)
    queries: list[GearQuery] = []
    seen: set[str] = set()

    def add(text: str, category: str, attr: str | None, use: str | None, split: str) -> None:
        text = " ".join(text.split())
        if text.lower() in seen:  # one string, one meaning, one split
            return
        seen.add(text.lower())
        relevant = tuple(p.id for p in products
                         if p.category == category and (attr is None or attr in p.attributes))
        queries.append(GearQuery(f"q{len(queries):04d}", text, category, attr, use, split, relevant))

    for spec in taxonomy["families"].values():
        for category, cat in spec["categories"].items():
            train_uses = [u for u in cat["uses"] if splits[(category, "use:" + u)] == "train"]
            for term in cat["terms"]:  # the bare category name: pure category knowledge
                add(term, category, None, None, "train")
            for attr in cat["attributes"]:
                split = splits[(category, attr)]
                words = spec["attributes"][attr]
                for template in ATTR_TEMPLATES:
                    # Training queries only borrow training uses, so no test use leaks in.
                    use = rng.choice(train_uses if split == "train" else cat["uses"])
                    add(template.format(pre=words["pre"], post=words["post"], term=rng.choice(cat["terms"]),
                                        noun=spec["noun"], use=use),
                        category, attr, use if "{use}" in template else None, split)
            for use in cat["uses"]:
                split = splits[(category, "use:" + use)]
                for template in PLAIN_TEMPLATES:
                    add(template.format(term=rng.choice(cat["terms"]), noun=spec["noun"], use=use),
                        category, None, use, split)
    return queries


def _triplets(queries: list[GearQuery], products: list[Product], split: str,
              rng: random.Random) -> list[Triplet]:
    """(query, relevant product, hard negative) rows for one split.

    The hard negative is a product of a *sibling* category (same family) that shares the query's
    attribute when one exists: same vocabulary, wrong category, exactly the confusion to unlearn.
    """
    by_id = {p.id: p for p in products}
    rows: list[Triplet] = []
    for q in (q for q in queries if q.split == split):
        siblings = [p for p in products if p.family == by_id[q.relevant[0]].family and p.category != q.category]
        sharing = [p for p in siblings if q.attribute and q.attribute in p.attributes]
        for pid in rng.sample(q.relevant, min(POSITIVES_PER_QUERY, len(q.relevant))):
            negative = rng.choice(sharing or siblings)
            rows.append(Triplet(q.text, by_id[pid].text, negative.text, q.id, pid, negative.id))
    rng.shuffle(rows)
    return rows


def generate(seed: int = SEED, per_category: int = PER_CATEGORY, taxonomy: dict | None = None) -> GearCatalog:
    """Build the whole catalog from the taxonomy; the same seed always gives the same catalog."""
    taxonomy = taxonomy or read_taxonomy()
    rng = random.Random(seed)
    products = _products(taxonomy, rng, per_category)
    queries = _queries(taxonomy, products, rng)
    return GearCatalog(
        products=tuple(products),
        queries=tuple(queries),
        train_pairs=tuple(_triplets(queries, products, "train", rng)),
        val_pairs=tuple(_triplets(queries, products, "val", rng)),
        families={f: list(spec["categories"]) for f, spec in taxonomy["families"].items()},
    )


# ---------------------------------------------------------------------------------------------
# files


def _jsonl(rows) -> str:
    return "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows)


def render(catalog: GearCatalog, seed: int = SEED) -> dict[str, str]:
    """File name -> exact text, so that writing and checking compare the same bytes."""
    files = {
        "products.jsonl": _jsonl(catalog.products),
        "queries.jsonl": _jsonl(catalog.queries),
        "train_pairs.jsonl": _jsonl(catalog.train_pairs),
        "val_pairs.jsonl": _jsonl(catalog.val_pairs),
    }
    manifest = {
        "generator": "labkit.data.gear", "seed": seed, "families": catalog.families,
        "counts": {"products": len(catalog.products), "train_pairs": len(catalog.train_pairs),
                   "val_pairs": len(catalog.val_pairs),
                   **{f"{s}_queries": sum(q.split == s for q in catalog.queries) for s in SPLITS}},
        "sha256": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()},
    }
    files["manifest.json"] = json.dumps(manifest, indent=1) + "\n"
    return files


def write(catalog: GearCatalog, folder: Path | None = None, seed: int = SEED) -> list[Path]:
    folder = Path(folder or data_dir() / "gear")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(catalog, seed).items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


def _read_jsonl(path: Path, kind) -> list:
    from labkit.files import iter_jsonl

    rows = []
    for where, record in iter_jsonl(path, CatalogError):
        try:
            for key in ("attributes", "relevant"):
                if key in record:
                    record[key] = tuple(record[key])
            rows.append(kind(**record))
        except TypeError as err:
            raise CatalogError(f"{where}: not a {kind.__name__} row ({err})") from None
    return rows


def load(folder: Path | str | None = None) -> GearCatalog:
    """Read the committed catalog (``data/gear/`` unless ``folder`` says otherwise)."""
    folder = Path(folder or data_dir() / "gear")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise CatalogError(f"{folder}: missing {missing}; regenerate with `python -m labkit.data.gear`")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    catalog = GearCatalog(
        products=tuple(_read_jsonl(folder / "products.jsonl", Product)),
        queries=tuple(_read_jsonl(folder / "queries.jsonl", GearQuery)),
        train_pairs=tuple(_read_jsonl(folder / "train_pairs.jsonl", Triplet)),
        val_pairs=tuple(_read_jsonl(folder / "val_pairs.jsonl", Triplet)),
        families=manifest["families"],
    )
    if not catalog.products:
        raise CatalogError(f"{folder}/products.jsonl has no products")
    return catalog


def main(argv: list[str]) -> int:
    folder = data_dir() / "gear"
    catalog = generate()
    if "--check" in argv:
        stale = [n for n, text in render(catalog).items()
                 if not (folder / n).is_file() or (folder / n).read_text(encoding="utf-8") != text]
        print("data/gear is up to date" if not stale else f"stale: {stale}")
        return 1 if stale else 0
    for path in write(catalog, folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
