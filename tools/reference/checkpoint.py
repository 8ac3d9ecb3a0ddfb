"""A Hugging Face model folder: config.json plus model.safetensors or an index with shards.

Two layouts are accepted:
  * flat (Omni-Embed-Nemotron, ``model_type: nvomniembed``): ``text_config``, ``vision_config``,
    ``audio_config`` at the top level; tensors ``model.*``, ``lm_head.weight``, ``visual.*``,
    ``audio_tower.*``;
  * base (Qwen2.5-Omni, ``model_type: qwen2_5_omni``): the same under ``thinker_config`` and tensors
    prefixed ``thinker.`` (``talker.*`` and ``token2wav.*`` are ignored).
Towers ask for tensors by their flat name; the prefix is added here.
"""

import json
import os

from safetensors_np import SafetensorsFile


class CheckpointError(Exception):
    pass


class Checkpoint:
    def __init__(self, model_dir):
        self.model_dir = model_dir
        config_path = os.path.join(model_dir, "config.json")
        if not os.path.isfile(config_path):
            raise CheckpointError("%s: no config.json in the model folder" % model_dir)
        with open(config_path, "r", encoding="utf-8") as f:
            self.config = json.load(f)
        self.layout, self.thinker_config, self.prefix = self._detect_layout(self.config)
        self._files = {}
        self._where = self._index_tensors()

    @staticmethod
    def _detect_layout(config):
        if "thinker_config" in config:
            return "base", config["thinker_config"], "thinker."
        if "text_config" in config:
            return "flat", config, ""
        raise CheckpointError("config.json has neither thinker_config (Qwen2.5-Omni) nor text_config "
                              "(Omni-Embed-Nemotron); model_type=%r" % config.get("model_type"))

    def _open(self, filename):
        if filename not in self._files:
            path = os.path.join(self.model_dir, filename)
            if not os.path.isfile(path):
                raise CheckpointError("%s: shard %s listed in the index is missing" % (self.model_dir, filename))
            self._files[filename] = SafetensorsFile(path)
        return self._files[filename]

    def _index_tensors(self):
        single = os.path.join(self.model_dir, "model.safetensors")
        index = os.path.join(self.model_dir, "model.safetensors.index.json")
        if os.path.isfile(index):
            with open(index, "r", encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            return dict(weight_map)
        if os.path.isfile(single):
            return {name: "model.safetensors" for name in self._open("model.safetensors").tensors}
        raise CheckpointError("%s: neither model.safetensors nor model.safetensors.index.json found"
                              % self.model_dir)

    def sub_config(self, key):
        if key not in self.thinker_config:
            raise CheckpointError("config.json (%s layout) has no %s" % (self.layout, key))
        return self.thinker_config[key]

    def full_name(self, name):
        return self.prefix + name

    def has(self, name):
        return self.full_name(name) in self._where

    def shape(self, name):
        full = self._require(name)
        return self._open(self._where[full]).tensors[full].shape

    def _require(self, name):
        full = self.full_name(name)
        if full not in self._where:
            raise CheckpointError("%s: tensor %s not found" % (self.model_dir, full))
        return full

    def get(self, name, shape=None, rows=None):
        """Tensor ``name`` (flat naming) as float32; checks ``shape`` when given. ``rows`` gathers rows
        of axis 0 without reading the rest of the tensor."""
        full = self._require(name)
        st = self._open(self._where[full])
        actual = st.tensors[full].shape
        if shape is not None and tuple(shape) != actual:
            raise CheckpointError("tensor %s: expected shape %s, found %s" % (full, tuple(shape), actual))
        return st.get_f32(full, rows=rows)
