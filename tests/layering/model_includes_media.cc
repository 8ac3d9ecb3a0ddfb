// The control of model_includes_index.cc: model code including its own layer and one it depends on builds.
#include "media/image.h"
#include "model/embedder.h"

int layering_probe_downward() { return 0; }
