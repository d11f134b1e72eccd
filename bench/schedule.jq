# The measures of one bench/schedule run, from the jobs ($jobs), pr-submit's
# results ($results) and each stand-in's /fake/state ($states, with t0 so
# the servers' clocks line up). Times in seconds.

def pct($p): sort | if length == 0 then null
  else .[([((length - 1) * $p | ceil), length - 1] | min)] end;
def stats: {p50: pct(0.5), p99: pct(0.99), n: length};

# Every run on every server, on one clock.
[$states[] | . as $s | .runs[]
 | {server: $s.url, prompt_id, status, start: ($s.t0 + .start), end: ($s.t0 + .end)}] as $runs
| ($runs | map({key: .prompt_id, value: .}) | from_entries) as $run_of
| ($results | map({key: .id, value: .}) | from_entries) as $result
| ($jobs | map({key: .id, value: .}) | from_entries) as $job
| [$runs[] | .end - .start] as $durations

# The run of each job (its last, successful one).
| def run($id): $run_of[$result[$id].prompt_id];
# Reference extraction after a job: its derive steps (fetched to collected).
  def extraction($id): ($result[$id].timings) as $t
    | if ($job[$id].derive | length) > 0 and $t.fetched and $t.collected
      then $t.collected - $t.fetched else 0 end;
# The run before r on its server.
  def previous($r): [$runs[] | select(.server == $r.server and .end <= $r.start + 1e-9
                                       and .prompt_id != $r.prompt_id) | .end] | max;

# Gaps: when a job could have started (its dependencies' ends, or their
# ends plus their extraction, and its server's previous end) to its start.
  [$jobs[] | select(.deps | length > 0) | .id as $id | run($id) as $r
   | select($r != null)
   | previous($r) as $prev
   | {all: ($r.start - ([([.deps[] | run(.).end] | max), ($prev // -1e18)] | max)),
      without: ($r.start - ([([.deps[] | run(.).end + extraction(.)] | max), ($prev // -1e18)] | max))}
   | map_values(if . < 0 then 0 else . end)] as $gaps

# The ideal: no run starts before its dependencies' chain could end, no
# server runs two things at once.
| (reduce ($jobs[] | .id) as $id ({};
    . as $h | .[$id] = ([$job[$id].deps[] | $h[.] + ((run(.).end - run(.).start) // 0)] | max // 0)))
  as $head
| ([$jobs[] | .id as $id | select(run($id) != null) | $head[$id] + (run($id).end - run($id).start)] | max)
  as $chain
| ([$runs[] | .server] | unique | map(. as $srv
    | [$jobs[] | .id as $id | select(run($id).server == $srv) | $head[$id]] | min
      + ([$runs[] | select(.server == $srv) | .end - .start] | add))) as $per_server

| {name: $name, run: $title, command: $command, servers: $nservers,
   jobs: ($jobs | length),
   succeeded: ([$results[] | select(.status == "success")] | length),
   prompts_run: ($runs | length),
   wall: $wall,
   ideal: ([$chain, $per_server[]] | max),
   busy: ($durations | add),
   busy_fraction: (($durations | add) / ($nservers * $wall)),
   model_loads: ([$states[].model_loads | length] | add),
   model_loads_per_server: [$states[] | .model_loads | length],
   gap: ($gaps | map(.all) | stats),
   gap_without_extraction: ($gaps | map(.without) | stats),
   extraction: ([$jobs[] | .id as $id | select(($job[$id].derive | length) > 0) | extraction($id)]
                | stats + {total: add})}
