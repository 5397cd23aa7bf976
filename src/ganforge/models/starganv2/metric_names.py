"""StarGAN v2's metric names: what its evaluation produces per guidance mode, and which way is better.

Pure data, so that the family's registration can declare it without importing the evaluation."""

from __future__ import annotations

from ganforge.metric_names import MetricVocabulary

# The values that can rank checkpoints during training (eval.metric); per-task values come too.
VOCABULARY = MetricVocabulary({
    "fid": {"FID_latent/mean": False, "FID_reference/mean": False},
    "lpips": {"LPIPS_latent/mean": True, "LPIPS_reference/mean": True},
    "oracle": {"oracle_latent/domain_acc": True, "oracle_reference/domain_acc": True, "oracle_latent/pose_kept": True,
               "oracle_reference/pose_kept": True, "oracle_reference/color_taken": True,
               "oracle_reference/texture_taken": True, "oracle_latent/colors_per_source": True},
    "judge": {"judge_latent/domain_acc": True, "judge_reference/domain_acc": True, "judge_latent/diversity": True,
              "judge_reference/diversity": True},
})
