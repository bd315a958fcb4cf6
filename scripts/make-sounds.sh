#!/usr/bin/env bash
# Regenerates the default sounds shipped in config/sounds/: hold music
# synthesised with sox (a short melody in sine tones) and spoken prompts from
# espeak-ng, all as 8 kHz, 16-bit mono WAV (the G.711 rate, so no resampling
# on the common path). The project made them itself; they are CC0 (see
# config/sounds/README.md). Run it when a prompt's text changes and commit
# the results: the gateway never needs sox or espeak-ng at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v sox >/dev/null || need+=(sox)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
if [ ${#need[@]} -gt 0 ]; then
    sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y -qq "${need[@]}"
fi
out=config/sounds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wav8k() { sox "$1" -r 8000 -c 1 -b 16 -e signed-integer "$2" ${3:-}; }

# Hold music: a gentle melody (C major arpeggios) with a soft fifth below,
# 0.4 s notes with fades, looped to ~32 s, normalised to -6 dBFS.
notes=(C4 E4 G4 C5 G4 E4 D4 F4 A4 D5 A4 F4 B3 D4 G4 B4 G4 D4 C4 E4 G4 C5 E5 C5)
parts=()
for i in "${!notes[@]}"; do
    n=${notes[$i]}
    sox -n -r 8000 -c 1 -b 16 "$work/n$i.wav" synth 0.4 pluck "$n" synth 0.4 sine mix "$n" fade q 0.02 0.4 0.15 vol 0.5
    parts+=("$work/n$i.wav")
done
sox "${parts[@]}" "$work/phrase.wav"
sox "$work/phrase.wav" "$work/loop.wav" repeat 2
wav8k "$work/loop.wav" "$out/hold-music.wav" "norm -6"

say() { # name text
    espeak-ng -v en-us -s 150 -w "$work/$1.raw.wav" "$2"
    wav8k "$work/$1.raw.wav" "$out/$1.wav" "norm -3"
}
say welcome "Thank you for calling. Please stay on the line: the next available agent will be with you shortly."
say hold "Please stay on the line while we check. Thank you for your patience."
say all-agents-busy "All our agents are busy at the moment. Please call again later. Goodbye."
say position "You are caller number"
for d in 0 1 2 3 4 5 6 7 8 9; do
    say "digit-$d" "$d"
done
# Numbers beyond 9: the teens and the tens as words ("number-14",
# "number-40"); 21 is "number-20" then "digit-1" (see src/call/announce.rs).
for n in 10 11 12 13 14 15 16 17 18 19 20 30 40 50 60 70 80 90; do
    say "number-$n" "$n"
done
say minutes "minutes"
say minute "minute"
say wait "Your estimated waiting time is"
# The demo IVR menu (config/switchboard.toml, [[ivr]] "main").
say main-menu "For sales, press 1. For support, press 2."
say invalid-choice "Sorry, that is not a valid choice."
say recorded "This call may be recorded for quality and training purposes."
say echo-test "Echo test. Speak and you will hear yourself."
say prompt-test "This is the Switchboard prompt test. If you can hear this, your audio works."
ls -l "$out"
