"""StoryGAN (Li et al., CVPR 2019): story visualization, one image per sentence, consistent across the story."""

from ganforge.models.storygan import family  # noqa: F401  (registers the family)
