//! The history's totals and deep pages come from counters, not from
//! counting rows; this checks them against a plain reading of every record.
//! Records spread over 200 days and are written out of order, half by the
//! service's own path and half by an import; each query
//! picks a random filter, window and offset, and its total and page must
//! equal what filtering the full history in memory gives, before and after
//! retention has removed the older records; so must its summary (series,
//! DRM types, platforms, failures). Records written a second time
//! (a replayed spool) must change neither. Runs on SQLite, and on
//! PostgreSQL when `TEST_POSTGRES_URL` names a server.

use std::collections::{BTreeMap, HashMap};

use multidrm::domain::device::Platform;
use multidrm::domain::drm::DrmType;
use multidrm::domain::history::{
    FailReason, HistoryFilter, HistoryWindow, LicenseRecord, LicenseStatus, NewLicenseRecord,
    RecordKey, SearchFilter,
};
use multidrm::domain::site::Site;
use multidrm::domain::summary::{
    FailureCount, HistorySummary, Interval, SeriesBucket, TOP_FAILURES,
};
use multidrm::store::{NewSite, SharedStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;

const NOW: i64 = 1_796_266_800_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const RECORDS: usize = 6000;
const MODELS: [&str; 4] = ["Chrome", "Safari", "Firefox", "Edge"];

async fn site_in(store: &SharedStore) -> Site {
    let account_id = store.ensure_account("account-1", NOW).await.unwrap();
    let site = NewSite {
        site_id: "drm-20261203000000-COUNT".to_owned(),
        account_id,
        name: "counts".to_owned(),
        policy_id: 0,
        kms_token_sealed: vec![1, 2, 3],
        fairplay_sealed: None,
        created_at: NOW,
    };
    store.insert_site(&site, "created").await.unwrap()
}

fn random_record(rng: &mut StdRng, site_pk: i64) -> NewLicenseRecord {
    // Many records fall on the first millisecond of an hour or a day (the
    // start of a counter bucket), and many share one millisecond: that tests
    // the bucket edges and the id tie-breaker.
    let time = NOW - rng.gen_range(0..200 * DAY);
    let created_at = match rng.gen_range(0..10) {
        0 | 1 => time - time % DAY,
        2 => time - time % HOUR,
        3 => NOW - 7 * DAY,
        _ => time,
    };
    NewLicenseRecord {
        key: RecordKey::generate(),
        site_pk,
        content_id: format!("content-{}", rng.gen_range(0..40)),
        drm_type: rng
            .gen_bool(0.95)
            .then(|| DrmType::ALL[rng.gen_range(0..4)]),
        user_id: format!("user-{}", rng.gen_range(0..200)),
        device_id: format!("device-{}", rng.gen_range(0..300)),
        device_model: MODELS[rng.gen_range(0..MODELS.len())].to_owned(),
        platform: Platform::ALL[rng.gen_range(0..Platform::ALL.len())],
        created_at,
        failure: rng.gen_bool(0.1).then(|| FailReason {
            code: "2810012".to_owned(),
            name: "LICENSE_DRM_INFO_NOT_FOUND".to_owned(),
        }),
    }
}

fn random_filter(rng: &mut StdRng) -> HistoryFilter {
    let search = match rng.gen_range(0..5) {
        0 | 1 => None,
        2 => Some(SearchFilter::DrmType(DrmType::ALL[rng.gen_range(0..4)])),
        3 => Some(SearchFilter::DeviceModel(
            MODELS[rng.gen_range(0..MODELS.len())].to_owned(),
        )),
        _ => Some(SearchFilter::ContentId(format!(
            "content-{}",
            rng.gen_range(0..40)
        ))),
    };
    // Bounds land on hour and day edges, inside hours, or nowhere.
    let bound = |rng: &mut StdRng| match rng.gen_range(0..4) {
        0 => None,
        1 => Some(NOW - rng.gen_range(0..210) * DAY),
        2 => Some(NOW - rng.gen_range(0..210 * 24) * HOUR),
        _ => Some(NOW - rng.gen_range(0..210 * DAY)),
    };
    let (mut start, mut end) = (bound(rng), bound(rng));
    if let (Some(a), Some(b)) = (start, end) {
        (start, end) = (Some(a.min(b)), Some(a.max(b)));
    }
    let status = match rng.gen_range(0..3) {
        0 => Some(LicenseStatus::Fail),
        1 => Some(LicenseStatus::Success),
        _ => None,
    };
    let drm_type = rng
        .gen_bool(0.25)
        .then(|| DrmType::ALL[rng.gen_range(0..4)]);
    let platform = rng
        .gen_bool(0.15)
        .then(|| Platform::ALL[rng.gen_range(0..Platform::ALL.len())]);
    HistoryFilter {
        search,
        start,
        end,
        status,
        drm_type,
        platform,
    }
}

fn matches(filter: &HistoryFilter, record: &LicenseRecord) -> bool {
    let searched = match &filter.search {
        None => true,
        Some(SearchFilter::DrmType(drm)) => record.drm_type == Some(*drm),
        Some(SearchFilter::DeviceModel(model)) => &record.device_model == model,
        Some(SearchFilter::ContentId(content)) => &record.content_id == content,
        Some(SearchFilter::UserId(user)) => &record.user_id == user,
        Some(SearchFilter::DeviceId(device)) => &record.device_id == device,
    };
    searched
        && filter.start.is_none_or(|start| record.created_at >= start)
        && filter.end.is_none_or(|end| record.created_at <= end)
        && filter.status.is_none_or(|status| record.status == status)
        && filter
            .drm_type
            .is_none_or(|drm| record.drm_type == Some(drm))
        && filter
            .platform
            .is_none_or(|platform| record.platform_name == platform.name())
}

/// Every record, newest first, read without counters.
async fn everything(store: &SharedStore, site: &Site) -> Vec<LicenseRecord> {
    let window = HistoryWindow {
        after: None,
        offset: 0,
        limit: i64::MAX,
    };
    store
        .read_history(site, &HistoryFilter::default(), window)
        .await
        .unwrap()
}

async fn compare_queries(store: &SharedStore, site: &Site, rng: &mut StdRng, queries: usize) {
    let all = everything(store, site).await;
    for _ in 0..queries {
        let filter = random_filter(rng);
        let expected: Vec<i64> = all
            .iter()
            .filter(|record| matches(&filter, record))
            .map(|record| record.id)
            .collect();
        let total = expected.len() as i64;
        let offset = match rng.gen_range(0..4) {
            0 => rng.gen_range(0..20),
            1 => 1000,
            _ => rng.gen_range(0..=total + 5),
        };
        let limit = rng.gen_range(1..=100);
        let window = HistoryWindow {
            after: None,
            offset,
            limit,
        };

        let (page, counted) = store.search_history(site, &filter, window).await.unwrap();

        assert_eq!(counted, total, "total of {filter:?}");
        let ids: Vec<i64> = page.iter().map(|record| record.id).collect();
        let wanted: Vec<i64> = expected
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .copied()
            .collect();
        assert_eq!(ids, wanted, "page at {offset} of {filter:?}");

        let interval = [Interval::Hour, Interval::Day][rng.gen_range(0..2)];
        let matching = all.iter().filter(|record| matches(&filter, record));
        let summary = store
            .summarize_history(site, &filter, interval)
            .await
            .unwrap();
        assert_eq!(
            summary,
            summary_of(matching, interval),
            "summary by {interval:?} of {filter:?}"
        );
    }
}

/// The summary of `records`, worked out one record at a time.
fn summary_of<'a>(
    records: impl Iterator<Item = &'a LicenseRecord>,
    interval: Interval,
) -> HistorySummary {
    let mut series: BTreeMap<i64, SeriesBucket> = BTreeMap::new();
    let mut drm_types: BTreeMap<Option<usize>, i64> = BTreeMap::new();
    let mut platforms: HashMap<String, i64> = HashMap::new();
    let mut failures: HashMap<(String, String), i64> = HashMap::new();
    let mut total = 0;
    for record in records {
        total += 1;
        let start = record.created_at - record.created_at % interval.ms();
        let bucket = series.entry(start).or_insert(SeriesBucket {
            start,
            ..SeriesBucket::default()
        });
        match record.status {
            LicenseStatus::Success => bucket.success += 1,
            LicenseStatus::Fail => bucket.fail += 1,
        }
        let position = record
            .drm_type
            .map(|drm| DrmType::ALL.iter().position(|each| *each == drm).unwrap());
        *drm_types.entry(position).or_default() += 1;
        *platforms.entry(record.platform_name.clone()).or_default() += 1;
        if let Some(failure) = &record.failure {
            *failures
                .entry((failure.code.clone(), failure.name.clone()))
                .or_default() += 1;
        }
    }
    let mut by_drm_type: Vec<(Option<DrmType>, i64)> = drm_types
        .iter()
        .filter_map(|(position, n)| position.map(|p| (Some(DrmType::ALL[p]), *n)))
        .collect();
    // Records whose token named no DRM type come after every type.
    if let Some(n) = drm_types.get(&None) {
        by_drm_type.push((None, *n));
    }
    let mut by_platform: Vec<(String, i64)> = platforms.into_iter().collect();
    by_platform.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut top_failures: Vec<FailureCount> = failures
        .into_iter()
        .map(|((code, name), count)| FailureCount { code, name, count })
        .collect();
    top_failures.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    top_failures.truncate(TOP_FAILURES as usize);
    HistorySummary {
        total,
        series: series.into_values().collect(),
        by_drm_type,
        by_platform,
        top_failures,
    }
}

async fn check(store: SharedStore) {
    let site = site_in(&store).await;
    let mut rng = StdRng::seed_from_u64(20261203);
    let records: Vec<NewLicenseRecord> = (0..RECORDS)
        .map(|_| random_record(&mut rng, site.pk))
        .collect();
    // Half as the service writes them, half as an import loads them (on
    // SQLite, one that drops the indexes and builds them again at the end).
    let (written, imported) = records.split_at(RECORDS / 2);
    for batch in written.chunks(500) {
        store.insert_license_records(batch).await.unwrap();
    }
    let mut import = store.begin_import(u64::MAX).await.unwrap();
    for batch in imported.chunks(700) {
        import.add(batch.to_vec()).await.unwrap();
    }
    assert_eq!(import.commit().await.unwrap(), imported.len() as u64);
    assert_eq!(everything(&store, &site).await.len(), RECORDS);

    // A batch written again (a replayed spool) with some new records stores
    // and counts only those; the queries below check the counters.
    let fresh: Vec<NewLicenseRecord> = (0..50).map(|_| random_record(&mut rng, site.pk)).collect();
    let replayed = [&records[..450], &fresh[..]].concat();
    let new = store.insert_license_records(&replayed).await.unwrap();
    assert_eq!(new, 50);
    assert_eq!(everything(&store, &site).await.len(), RECORDS + 50);

    compare_queries(&store, &site, &mut rng, 400).await;

    let removed = multidrm::retention::purge_once(&store, NOW, 90)
        .await
        .unwrap();
    let kept = everything(&store, &site).await;
    assert_eq!(removed as usize + kept.len(), RECORDS + 50);
    assert!(kept
        .iter()
        .all(|record| record.created_at >= NOW - 90 * DAY));
    assert!(removed > 0);

    compare_queries(&store, &site, &mut rng, 200).await;
}

#[tokio::test]
async fn totals_and_deep_pages_match_the_records_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("counts.db").display());
    check(multidrm::store::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn totals_and_deep_pages_match_the_records_on_postgres() {
    let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipped: TEST_POSTGRES_URL names no PostgreSQL server");
        return;
    };
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    let name = format!("multidrm_counts_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').unwrap();
    check(
        multidrm::store::open(&format!("{base}/{name}"))
            .await
            .unwrap(),
    )
    .await;
}
