"""GoTo's API: the client and its calls (:mod:`.client`), the answers read
(:mod:`.decode`), the session that paces, retries and stops them (:mod:`.session`), the HTTP
underneath (:mod:`.wire`, :mod:`.tls`), the sign-in and the stored credentials (:mod:`.oauth`,
:mod:`.credentials`) and the connection that puts them together (:mod:`.connection`)."""
