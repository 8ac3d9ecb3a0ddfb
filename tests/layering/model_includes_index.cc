// A deliberately wrong include: model code reaching up into the index layer. Building this must fail.
#include "index/store.h"
#include "model/embedder.h"

int layering_probe_upward() { return 0; }
