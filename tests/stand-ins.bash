# The whole pipeline's stand-ins, for the suites that run pipeline.sh
# (run-all, matrix): fake-comfyui, fake-gcs and fake-runpod, pipeline.sh
# pointed at them, and two prompt files beside their source video in p/.
# Load it after helper, submit, gcs and runpod.
#
# shellcheck shell=bash

# stand_ins [FAKE-COMFYUI OPTIONS...]: all three; with SA_KEY=PREFIX
# (PREFIX.pem made by make_key) GCS wants that service account's tokens,
# and sa.json is its key file, as GOOGLE_APPLICATION_CREDENTIALS.
stand_ins() {
	start_fast_comfy "$@"
	if [ -n "${SA_KEY:-}" ]; then
		start_gcs --bucket bkt --public-key "$SA_KEY.pub"
		jq -n --rawfile pem "$SA_KEY.pem" --arg uri "$GCS/token" '{type: "service_account",
		    project_id: "p", private_key_id: "k1", private_key: $pem,
		    client_email: "runner@p.iam.gserviceaccount.com", token_uri: $uri}' > sa.json
		export GOOGLE_APPLICATION_CREDENTIALS=$PWD/sa.json
	else
		start_gcs --bucket bkt
	fi
	start_runpod --pod pod1
	export STORAGE_EMULATOR_HOST=127.0.0.1:$GCS_PORT
	export RUNPOD_POD_ID=pod1 RUNPOD_API_KEY=$RP_KEY
	export RUNPOD_API_URL=$RP/v1 RUNPOD_GRAPHQL_URL=$RP/graphql
	mkdir -p p
	write_prompt p/one.txt src.mp4 41 'a walk' -
	write_prompt p/two.txt src.mp4 150 'a run' -
	submit_source p/src.mp4 150
}
