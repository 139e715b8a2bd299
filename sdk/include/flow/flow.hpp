// Everything a plugin author needs.
#pragma once

#include "flow/batch.hpp"
#include "flow/options.hpp"
#include "flow/plugin.hpp"
#include "flow/positions.hpp"
#include "flow/schema.hpp"
#include "flow/stage.hpp"
#include "flow/value.hpp"
