"""k-means clusters of images (the labels of a self-conditioned GAN): found, deterministic, assigned, refused."""

from __future__ import annotations

import pytest
import torch

from conftest import toy_images
from ganforge.data import clusters
from ganforge.data.clusters import assign_clusters, cluster_images, cluster_names, kmeans
from ganforge.errors import GanforgeError


def _images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [n, 1, 28, 28] of 10 kinds (a bright square at a place of its own, on noise), and their kinds."""
    images, labels = toy_images(n, 28, seed)
    return torch.from_numpy(images)[:, None], torch.from_numpy(labels).long()


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two labellings group the items alike (whatever numbers they give the groups)."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_finds_the_ten_kinds_of_image(seed):
    images, kinds = _images(300)
    labels = assign_clusters(images, cluster_images(images, 10, seed))
    assert _same_partition(labels, kinds)
    assert torch.bincount(labels).tolist() == [30] * 10


def test_the_same_images_and_seed_give_the_same_clusters_on_any_thread_count():
    images, _ = _images(500, seed=3)
    before = torch.get_num_threads()
    found = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            clusters._FOUND.clear()  # cluster again, not the kept result
            centroids = cluster_images(images, 7, seed=5)
            found.append((centroids, assign_clusters(images, centroids)))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(found[0][1], found[1][1])
    assert torch.allclose(found[0][0], found[1][0], rtol=0, atol=1e-12)
    assert cluster_images(images, 7, seed=5) is cluster_images(images, 7, seed=5)  # kept for the held-out split


def test_lloyd_iterations_lower_the_within_cluster_distance_and_end_at_the_nearest_centroid():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(200, 5, dtype=torch.float64) + 4 * torch.randn(1, 5, dtype=torch.float64)
                   for _ in range(6)])
    centroids, labels = kmeans(x, 6, seed=0)
    assert torch.equal(labels, torch.cdist(x, centroids).argmin(1))  # every point at its nearest centroid
    for j in range(6):  # every centroid is the mean of its points
        assert torch.allclose(centroids[j], x[labels == j].mean(0))


def test_large_data_is_fitted_on_a_subset_and_every_image_assigned(monkeypatch):
    monkeypatch.setattr(clusters, "FIT_IMAGES", 100)
    images, kinds = _images(1000, seed=4)
    clusters._FOUND.clear()
    labels = assign_clusters(images, cluster_images(images, 10, seed=0))
    assert labels.shape == (1000,) and _same_partition(labels, kinds)


def test_features_are_pooled_to_at_most_16_pixels_a_side():
    x = clusters._features(torch.full((2, 3, 64, 64), 255, dtype=torch.uint8))
    assert x.shape == (2, 3 * 16 * 16) and torch.all(x == 1.0)
    assert clusters._features(torch.zeros(1, 1, 28, 28, dtype=torch.uint8)).shape == (1, 14 * 14)


def test_impossible_clusterings_are_one_sentence():
    images, _ = _images(20)
    with pytest.raises(GanforgeError, match="Cannot make 30 clusters of 20 images"):
        kmeans(clusters._features(images), 30)
    centroids = cluster_images(images, 3)
    with pytest.raises(GanforgeError, match="size and channels"):
        assign_clusters(torch.zeros(2, 3, 28, 28, dtype=torch.uint8), centroids)
    assert cluster_names(3) == ["cluster 0", "cluster 1", "cluster 2"]
