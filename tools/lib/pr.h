/* Everything a tool needs from the shared library. */
#ifndef PR_H
#define PR_H

#include "buf.h"
#include "cli.h"
#include "err.h"
#include "file.h"
#include "json.h"
#include "jsonl.h"
#include "names.h"
#include "out.h"
#include "utf8.h"

#endif
