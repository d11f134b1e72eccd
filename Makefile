# prompt-runner: build, test, install.
#   make              build every tool into bin/
#   make check        the test suite, plain and under ASan/UBSan
#   make test         the test suite once, plain build only (quicker)
#   make plan         prompt files -> state/<video>/{prompt,plan,jobs}.jsonl
#   make install PREFIX=/usr/local DESTDIR=

VERSION  = 0.1.0
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wvla
PKGS     = libcjson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcjson)
ALL_CFLAGS = -std=c17 $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Itools/lib \
             -D_POSIX_C_SOURCE=200809L -DPR_VERSION='"$(VERSION)"' -MMD -MP
LDLIBS  += $(PKG_LIBS) -lm

# Quiet build lines; make V=1 shows the commands.
ifeq ($(V),1)
Q =
else
Q = @
endif

# O: objects, B: tools. The sanitizer build uses its own pair.
O ?= build/obj
B ?= bin

LIB_SRC := $(wildcard tools/lib/*.c)
LIB_OBJ := $(LIB_SRC:tools/lib/%.c=$(O)/lib/%.o)
TOOLS   := $(patsubst tools/%.c,%,$(wildcard tools/pr-*.c tools/fake-*.c))
BINS    := $(TOOLS:%=$(B)/%)
MANS    := $(wildcard man/*.1)

ASAN_O = build/asan/obj
ASAN_B = build/asan/bin
SAN    = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all check test asan check-asan install uninstall clean plan lint
.SUFFIXES:
# Keep object files: they are intermediates of the tool rule otherwise.
.SECONDARY:

all: $(BINS)

$(B)/%: $(O)/%.o $(O)/libpr.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(O)/libpr.a $(LDLIBS)

$(O)/libpr.a: $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $(LIB_OBJ)

$(O)/%.o: tools/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

asan:
	$(MAKE) --no-print-directory O=$(ASAN_O) B=$(ASAN_B) \
	    CFLAGS='-O1 -g $(SAN)' LDFLAGS='$(SAN)' all

# The README's test command. Runs every suite against the plain build and
# the sanitizer build; ends with "N passed, N failed, N skipped".
check: all asan
	@tests/run --bin $(B) --san-bin $(ASAN_B)

check-asan: asan
	@tests/run --san-bin $(ASAN_B)

test: all
	@tests/run --bin $(B)

lint:
	shellcheck -S style pipeline.sh setup tests/run .ci/run
	for m in $(MANS); do mandoc -T lint -W warning $$m || exit 1; done

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)
	install -m 755 pipeline.sh $(DESTDIR)$(BINDIR)/pr-pipeline
	install -m 644 $(MANS) $(DESTDIR)$(MANDIR)/man1

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(BINDIR)/pr-pipeline
	rm -f $(MANS:man/%=$(DESTDIR)$(MANDIR)/man1/%)

clean:
	rm -rf build bin

# --- the offline stages, per video, so make rebuilds only what changed ---
PROMPTS   ?= prompt_files
STATE     ?= state
WORKFLOWS ?= workflows
# The tools the stages run; a rebuilt tool replans. PR_TOOLS=/usr/local/bin
# plans with installed tools instead.
PR_TOOLS  ?= $(B)
PLAN_FLAGS  ?=
PATCH_FLAGS ?=
VIDEOS := $(basename $(notdir $(wildcard $(PROMPTS)/*.txt)))

plan: $(VIDEOS:%=$(STATE)/%/jobs.jsonl)

$(STATE)/%/prompt.jsonl: $(PROMPTS)/%.txt $(PR_TOOLS)/pr-parse
	@mkdir -p $(@D)
	$(PR_TOOLS)/pr-parse $< > $@.tmp && mv $@.tmp $@

$(STATE)/%/plan.jsonl: $(STATE)/%/prompt.jsonl $(PR_TOOLS)/pr-plan
	$(PR_TOOLS)/pr-plan $(PLAN_FLAGS) < $< > $@.tmp && mv $@.tmp $@

$(STATE)/%/jobs.jsonl: $(STATE)/%/plan.jsonl $(PR_TOOLS)/pr-patch $(wildcard $(WORKFLOWS)/*.json)
	rm -rf $(STATE)/$*/workflows
	$(PR_TOOLS)/pr-patch --workflows $(WORKFLOWS) --state $(STATE) $(PATCH_FLAGS) < $< > $@.tmp && mv $@.tmp $@

.PRECIOUS: $(STATE)/%/prompt.jsonl $(STATE)/%/plan.jsonl

-include $(LIB_OBJ:.o=.d) $(TOOLS:%=$(O)/%.d)
