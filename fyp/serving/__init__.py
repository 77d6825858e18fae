"""Serving-side reads of the online store: `FeatureClient` and the packed value layout."""

from fyp.serving.client import EntityFeatures, FeatureClient, RequestFeatures

__all__ = ["EntityFeatures", "FeatureClient", "RequestFeatures"]
