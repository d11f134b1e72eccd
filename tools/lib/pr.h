/* Everything a tool needs from the shared library. */
#ifndef PR_H
#define PR_H

#include "buf.h"
#include "cli.h"
#include "clock.h"
#include "err.h"
#include "file.h"
#include "frameid.h"
#include "json.h"
#include "jsonl.h"
#include "names.h"
#include "nodes.h"
#include "objectinfo.h"
#include "out.h"
#include "proc.h"
#include "python.h"
#include "utf8.h"
#include "validate.h"
#include "video.h"

#endif
