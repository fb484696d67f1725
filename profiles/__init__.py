"""Named, validated server profiles: the built-in matrix plus the user's TOML files."""

from profiles.builtin import builtin_profiles
from profiles.catalog import Catalog, ProfileEntry, load_catalog
from profiles.model import FIELDS, Profile, ProfileError, is_loopback

__all__ = [
    "FIELDS",
    "Catalog",
    "Profile",
    "ProfileEntry",
    "ProfileError",
    "builtin_profiles",
    "is_loopback",
    "load_catalog",
]
