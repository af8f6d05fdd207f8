-- A site's upstream license servers (Widevine, PlayReady, FairPlay) as
-- sealed JSON: their static headers may hold credentials, so URL and
-- headers are sealed together with the master key, like FairPlay's. A
-- table of its own rather than a column of `sites`: only the license path
-- for those DRM types and the site answers read it.
CREATE TABLE site_license_servers (
    site_pk        BIGINT PRIMARY KEY REFERENCES sites (pk),
    servers_sealed BYTEA  NOT NULL
);

-- Finds a site from the KMS token a packager presents for CPIX. The token
-- itself stays sealed in `sites`; this keeps only its SHA-256, which is
-- enough to look it up and useless to anyone who reads the database.
-- Sites older than this table are indexed at startup.
CREATE TABLE kms_token_digests (
    digest  BYTEA  PRIMARY KEY,
    site_pk BIGINT NOT NULL UNIQUE REFERENCES sites (pk)
);
