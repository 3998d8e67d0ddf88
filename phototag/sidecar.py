"""XMP sidecars (``photo.jpg.xmp``): phototag's keywords in ``dc:subject`` and its faces as MWG regions.

Regions follow the MWG Guidelines 2.0, section 5.9: type ``Face``, ``stArea`` x/y is the
*centre* of the box, w/h its size, all normalised to the image **as stored** (EXIF orientation
not applied), and ``AppliedToDimensions`` holds the stored pixel size.

An existing sidecar is edited, never replaced: it is parsed with ``xml.etree``, phototag's
own parts are swapped and everything else (other properties, other tools' regions, comments)
is kept. phototag's parts are marked so ``clean`` can find exactly them: each of its regions
carries ``mwg-rs:Extensions`` with properties in the phototag namespace, and
``phototag:Keywords`` lists the keywords phototag added to ``dc:subject`` (a keyword the
user already had is not listed, so it survives a clean).
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "mwg-rs": "http://www.metadataworkinggroup.com/schemas/regions/",
    "stArea": "http://ns.adobe.com/xmp/sType/Area#",
    "stDim": "http://ns.adobe.com/xap/1.0/sType/Dimensions#",
    "phototag": "http://ns.phototag.invalid/1.0/",
}
PHOTOTAG_NS = NS["phototag"]
_PACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_PACKET_END = '\n<?xpacket end="w"?>\n'
_ARRAYS = ("Bag", "Seq", "Alt")


def _q(name: str) -> str:
    """``"rdf:li"`` -> ``"{http://...}li"``."""
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


RDF, DESCRIPTION, LI, ABOUT, PARSE_TYPE = (_q(n) for n in (
    "rdf:RDF", "rdf:Description", "rdf:li", "rdf:about", "rdf:parseType"))
SUBJECT, REGIONS, REGION_LIST, APPLIED_TO = (_q(n) for n in (
    "dc:subject", "mwg-rs:Regions", "mwg-rs:RegionList", "mwg-rs:AppliedToDimensions"))
OWN_KEYWORDS = _q("phototag:Keywords")


def sidecar_path(photo: str | Path) -> Path:
    """Where a photo's sidecar lives: the full file name plus ``.xmp`` (``photo.jpg.xmp``)."""
    photo = Path(photo)
    return photo.with_name(photo.name + ".xmp")


@dataclass
class Region:
    """One face region: centre and size normalised to the stored image, plus phototag's data."""

    x: float
    y: float
    w: float
    h: float
    description: str
    extensions: dict[str, str] = field(default_factory=dict)  # local name -> value, phototag namespace


class NotXmp(ValueError):
    """The file is not an XMP document phototag can edit safely."""


class Sidecar:
    """An XMP sidecar document being edited in memory."""

    def __init__(self, data: bytes | None = None):
        if data:
            self.root = _parse(data)
            self.rdf = self.root if self.root.tag == RDF else self.root.find(f".//{RDF}")
            if self.rdf is None:
                raise NotXmp("no rdf:RDF element")
        else:
            self.root = ET.Element(_q("x:xmpmeta"), {_q("x:xmptk"): "phototag"})
            self.rdf = ET.SubElement(self.root, RDF)

    # -- keywords -------------------------------------------------------------------------------

    def keywords(self) -> list[str]:
        """All ``dc:subject`` keywords."""
        return _items(self._property(SUBJECT))

    def own_keywords(self) -> list[str]:
        """The keywords phototag added earlier (``phototag:Keywords``)."""
        return _items(self._property(OWN_KEYWORDS))

    def replace_own_keywords(self, added: list[str]) -> list[str]:
        """Remove phototag's previous keywords from ``dc:subject``, append ``added``; returns the removed."""
        previous = self.own_keywords()
        subject = self._property(SUBJECT)
        removed = _remove_items(subject, previous) if subject is not None else []
        if added:
            if subject is None:
                subject = ET.SubElement(self._description(), SUBJECT)
            _append_items(subject, added)
        if subject is not None and not _items(subject):
            self._drop(subject)
        self._set_bag(OWN_KEYWORDS, added)
        return removed

    # -- regions --------------------------------------------------------------------------------

    def replace_own_regions(self, regions: list[Region], stored_size: tuple[int, int]) -> int:
        """Swap phototag's face regions for ``regions`` (other tools' regions stay); returns how many went."""
        holder = self._property(REGIONS)
        removed = 0
        if holder is not None:
            fields = _struct_fields(holder)
            region_list = fields.find(REGION_LIST)
            if region_list is not None:
                bag = _container(region_list)
                for li in [li for li in bag.findall(LI) if _is_own(li)]:
                    bag.remove(li)
                    removed += 1
                if not bag.findall(LI) and not regions:
                    fields.remove(region_list)
            if not regions and all(child.tag == APPLIED_TO for child in fields):
                self._drop(holder)
                return removed
        if regions:
            if holder is None:
                holder = ET.SubElement(self._description(), REGIONS, {PARSE_TYPE: "Resource"})
            fields = _struct_fields(holder)
            if fields.find(APPLIED_TO) is None:
                _add_dimensions(fields, stored_size)
            region_list = fields.find(REGION_LIST)
            if region_list is None:
                region_list = ET.SubElement(fields, REGION_LIST)
            bag = _container(region_list)
            for region in regions:
                _add_region(bag, region)
        return removed

    # -- phototag's own properties --------------------------------------------------------------

    def set_properties(self, values: dict[str, str]) -> None:
        """Set simple properties in the phototag namespace on the main description."""
        for name, value in values.items():
            tag = f"{{{PHOTOTAG_NS}}}{name}"
            element = self._property(tag)
            if element is None:
                element = ET.SubElement(self._description(), tag)
            element.text = value

    def remove_own(self) -> tuple[list[str], int]:
        """Remove everything phototag wrote; returns (keywords removed, regions removed)."""
        keywords = self.replace_own_keywords([])
        regions = self.replace_own_regions([], (0, 0))
        for description in self.rdf.findall(DESCRIPTION):
            for child in [c for c in description if _in_own_ns(c.tag)]:
                description.remove(child)
            for name in [a for a in description.attrib if _in_own_ns(a)]:
                del description.attrib[name]
        return keywords, regions

    def is_empty(self) -> bool:
        """True when no description holds any property (the sidecar carries nothing)."""
        for child in self.rdf:
            if child.tag != DESCRIPTION or len(child) or set(child.attrib) - {ABOUT}:
                return False
        return True

    def to_bytes(self) -> bytes:
        """The document as an XMP packet (UTF-8)."""
        ET.indent(self.root, space=" ")
        return (_PACKET_BEGIN + ET.tostring(self.root, encoding="unicode") + _PACKET_END).encode()

    # -- helpers --------------------------------------------------------------------------------

    def _description(self) -> ET.Element:
        description = self.rdf.find(DESCRIPTION)
        if description is None:
            description = ET.SubElement(self.rdf, DESCRIPTION, {ABOUT: ""})
        return description

    def _property(self, tag: str) -> ET.Element | None:
        for description in self.rdf.findall(DESCRIPTION):
            element = description.find(tag)
            if element is not None:
                return element
        return None

    def _drop(self, element: ET.Element) -> None:
        for description in self.rdf.findall(DESCRIPTION):
            if element in list(description):
                description.remove(element)

    def _set_bag(self, tag: str, values: list[str]) -> None:
        element = self._property(tag)
        if not values:
            if element is not None:
                self._drop(element)
            return
        if element is None:
            element = ET.SubElement(self._description(), tag)
        bag = _container(element)
        for li in bag.findall(LI):
            bag.remove(li)
        _append_items(element, values)


def _parse(data: bytes) -> ET.Element:
    """Parse XMP keeping comments and processing instructions; registers the file's prefixes."""
    try:
        for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
            if prefix and not re.fullmatch(r"ns\d+", prefix) and uri not in NS.values():
                ET.register_namespace(prefix, uri)
        parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
        return ET.fromstring(data, parser)
    except ET.ParseError as error:
        raise NotXmp(f"not valid XML: {error}") from error


def _struct_fields(element: ET.Element) -> ET.Element:
    """The element whose children are a struct's fields (``parseType="Resource"`` or a nested Description)."""
    nested = element.find(DESCRIPTION)
    return nested if nested is not None and element.get(PARSE_TYPE) != "Resource" else element


def _find_container(element: ET.Element) -> ET.Element | None:
    """An array property's rdf:Bag, rdf:Seq or rdf:Alt."""
    for kind in _ARRAYS:
        found = element.find(f"{{{NS['rdf']}}}{kind}")
        if found is not None:
            return found
    return None


def _container(element: ET.Element) -> ET.Element:
    """An array property's container, created as an rdf:Bag when missing."""
    found = _find_container(element)
    return found if found is not None else ET.SubElement(element, _q("rdf:Bag"))


def _items(element: ET.Element | None) -> list[str]:
    bag = None if element is None else _find_container(element)
    return [] if bag is None else [(li.text or "").strip() for li in bag.findall(LI)]


def _append_items(element: ET.Element, values: list[str]) -> None:
    bag = _container(element)
    for value in values:
        ET.SubElement(bag, LI).text = value


def _remove_items(element: ET.Element, values: list[str]) -> list[str]:
    """Remove one ``rdf:li`` per value (the last one with that text); returns the values removed."""
    bag = _container(element)
    removed = []
    for value in values:
        matches = [li for li in bag.findall(LI) if (li.text or "").strip() == value]
        if matches:
            bag.remove(matches[-1])
            removed.append(value)
    return removed


def _in_own_ns(name) -> bool:
    """Whether a tag or attribute name is in the phototag namespace (comments' tags are not strings)."""
    return isinstance(name, str) and name.startswith(f"{{{PHOTOTAG_NS}}}")


def _is_own(li: ET.Element) -> bool:
    """A region phototag wrote: something in it is in the phototag namespace."""
    return any(_in_own_ns(e.tag) or any(map(_in_own_ns, e.attrib)) for e in li.iter())


def _add_dimensions(fields: ET.Element, stored_size: tuple[int, int]) -> None:
    dims = ET.SubElement(fields, APPLIED_TO, {PARSE_TYPE: "Resource"})
    for name, value in (("w", stored_size[0]), ("h", stored_size[1]), ("unit", "pixel")):
        ET.SubElement(dims, _q(f"stDim:{name}")).text = str(value)


def _add_region(bag: ET.Element, region: Region) -> None:
    li = ET.SubElement(bag, LI, {PARSE_TYPE: "Resource"})
    ET.SubElement(li, _q("mwg-rs:Type")).text = "Face"
    ET.SubElement(li, _q("mwg-rs:Description")).text = region.description
    area = ET.SubElement(li, _q("mwg-rs:Area"), {PARSE_TYPE: "Resource"})
    for name in ("x", "y", "w", "h"):
        ET.SubElement(area, _q(f"stArea:{name}")).text = f"{getattr(region, name):.6f}"
    ET.SubElement(area, _q("stArea:unit")).text = "normalized"
    extensions = ET.SubElement(li, _q("mwg-rs:Extensions"), {PARSE_TYPE: "Resource"})
    for name, value in region.extensions.items():
        ET.SubElement(extensions, f"{{{PHOTOTAG_NS}}}{name}").text = value


for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)
