wrk.method="POST"
wrk.body="{\"name\":\"w\",\"size\":3}"
wrk.headers["Content-Type"]="application/json"
