"""Dynamic maskers: masks provided with the data, and Grounding DINO + SAM 2 video on tiny models."""

import numpy as np
import pytest
import torch
import transformers as tf

from aether.annotate import GroundedSam2Masker, ProvidedMasks

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "person", "car", "animal"]


def test_provided_masks_from_labels_match_the_generator(render):
    clip = render("strafe", seed=3)
    from_labels = ProvidedMasks(("person", "car", "animal"))(
        clip.rgb, {"semantic": clip.semantic, "classes": clip.classes}
    )
    np.testing.assert_array_equal(from_labels, clip.dynamic)
    np.testing.assert_array_equal(ProvidedMasks()(clip.rgb, {"dynamic": clip.dynamic}), clip.dynamic)
    with pytest.raises(ValueError, match="needs 'dynamic'"):
        ProvidedMasks(missing="error")(clip.rgb, {})
    none = ProvidedMasks()(clip.rgb, {})  # masks are optional: nothing is marked dynamic
    assert none.shape == clip.rgb.shape[:3] and not none.any()
    with pytest.raises(ValueError, match=r"\(T,H,W\)"):
        ProvidedMasks()(clip.rgb, {"dynamic": clip.dynamic[:3]})


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny random Grounding DINO and SAM 2 video model, saved as local checkpoints."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny_models")
    det = root / "grounding_dino"
    det.mkdir()
    (det / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    swin = tf.SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_features=["stage2", "stage3", "stage4"],
    )
    bert = tf.BertConfig(
        vocab_size=len(WORDS),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    config = tf.GroundingDinoConfig(
        backbone_config=swin,
        text_config=bert,
        num_queries=20,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        d_model=32,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    tf.GroundingDinoForObjectDetection(config).save_pretrained(det)
    tf.GroundingDinoProcessor(
        image_processor=tf.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=tf.BertTokenizerFast(vocab_file=str(det / "vocab.txt")),
    ).save_pretrained(det)

    seg = root / "sam2_video"
    size, dim = 128, 128  # the memory attention hard-codes 64 memory channels and needs dim > 64
    backbone = tf.Sam2HieraDetConfig(
        hidden_size=16,
        image_size=[size, size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[4, 4],
    )
    vision = tf.Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[128, 64, 32, 16],
        fpn_hidden_size=dim,
        backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
    )
    config = tf.Sam2VideoConfig(
        vision_config=vision,
        image_size=size,
        num_maskmem=3,
        prompt_encoder_config={
            "hidden_size": dim,
            "image_size": size,
            "patch_size": 16,
            "mask_input_channels": 4,
        },
        mask_decoder_config={
            "hidden_size": dim,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
        memory_attention_hidden_size=dim,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // 16] * 2,
        memory_encoder_hidden_size=dim,
        mask_downsampler_embed_dim=dim,
        memory_fuser_embed_dim=dim,
        memory_fuser_intermediate_dim=64,
    )
    tf.Sam2VideoModel(config).save_pretrained(seg)
    tf.Sam2VideoProcessor(
        image_processor=tf.Sam2ImageProcessor(
            size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
        ),
        video_processor=tf.Sam2VideoVideoProcessor(size={"height": size, "width": size}),
        target_size=size,
    ).save_pretrained(seg)
    return det, seg


@pytest.mark.slow
def test_grounded_sam2_runs_on_tiny_models(tiny_models):
    det, seg = tiny_models
    frames = np.random.default_rng(0).integers(0, 255, (5, 48, 64, 3), dtype=np.uint8)
    masker = GroundedSam2Masker(
        det, seg, categories=("person", "car"), box_threshold=0.0, text_threshold=0.0, detect_every=3
    )

    # the detector's boxes are the model's own post-processed output
    boxes = masker.detect(frames[0])
    inputs = masker.det_processor(images=frames[0], text="person. car.", return_tensors="pt")
    with torch.no_grad():
        raw = masker.detector(**inputs)
    expected = masker.det_processor.post_process_grounded_object_detection(
        raw, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[(48, 64)]
    )[0]["boxes"]
    assert len(boxes) == 20
    np.testing.assert_allclose(boxes, expected.numpy(), atol=1e-5)

    masks = masker(frames, {})
    assert masks.shape == (5, 48, 64) and masks.dtype == bool
    np.testing.assert_array_equal(masks, masker(frames, {}))  # deterministic

    masker.box_threshold = 1.01  # nothing detected: nothing masked, SAM 2 never runs
    assert not masker(frames, {}).any()
