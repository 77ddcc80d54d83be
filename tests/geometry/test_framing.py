import pytest

from aether.geometry.framing import cover_size, crop_origin


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [((32, 50), (32, 48), (32, 50)), ((40, 61), (32, 48), (32, 49)), ((10, 10), (32, 48), (48, 48))],
)
def test_cover_size_keeps_the_aspect_and_covers(size, target, expected):
    assert cover_size(*size, *target) == expected


@pytest.mark.parametrize(
    ("size", "offset", "expected"), [(50, 0.5, 1), (51, 0.5, 1), (52, 0.5, 2), (51, 1.0, 3)]
)
def test_crop_origin_floors_the_placed_margin(size, offset, expected):
    assert crop_origin(size, 48, offset) == expected


def test_framing_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="expected 0 <= target <= size, got target 48 and size 40"):
        crop_origin(40, 48)
    with pytest.raises(ValueError, match=r"expected a value in \[0, 1\], got 1.5"):
        crop_origin(50, 48, 1.5)
    with pytest.raises(ValueError, match="expected positive image and target sizes, got 0x5"):
        cover_size(0, 5, 32, 48)
