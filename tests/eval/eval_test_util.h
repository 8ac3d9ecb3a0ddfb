// Helpers of the src/eval tests: files (common/files.h) and commands (common/run_command.h).
#pragma once

#include "common/files.h"
#include "common/run_command.h"
