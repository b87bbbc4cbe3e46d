# Shared by the benchmark scripts (sourced, not run): signing in through the HTTP API and the form.

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

# log_in URL: a new account with a Bearer token ($token) and a browser session cookie ($cookie),
# using $work for the cookie jar.
log_in() {
  local url=$1
  email="bench-$RANDOM$RANDOM@example.com"
  curl -sf -XPOST "$url/api/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" >/dev/null
  token=$(curl -sf -XPOST "$url/api/token" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" | json_field access_token)
  local jar="$work/cookies" csrf
  rm -f "$jar"
  csrf=$(curl -sf -c "$jar" -b "$jar" "$url/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -n1)
  curl -sf -o /dev/null -c "$jar" -b "$jar" -XPOST "$url/login" \
    --data-urlencode "csrf_token=$csrf" --data-urlencode "email=$email" --data-urlencode "password=benchmark password"
  cookie=$(awk '$6 == "revocable_session" { print $7 }' "$jar")
  [ -n "$token" ] && [ -n "$cookie" ] || { echo "could not log in for the benchmark" >&2; exit 1; }
}

# replace_section FILE SECTION_FILE: puts the section (its first line is its "## " heading) in
# place of the section of FILE with that heading, keeping the rest; appends it when there is none.
replace_section() {
  python3 - "$1" "$2" <<'PY'
import os, sys
path, section = sys.argv[1], open(sys.argv[2]).read()
heading = section.splitlines()[0]
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
start = text.find(heading)
if start < 0:
    text = text.rstrip("\n") + "\n\n" + section
else:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[end:] if end >= 0 else "")
open(path, "w").write(text)
PY
}
