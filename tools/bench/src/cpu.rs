//! Where the CPU went during a run: Mailkeep (all nodes), PostgreSQL, the load generator and
//! everything else on the machine (other work shares its cores), in cores (CPU seconds per
//! second of the run), so a saturated side shows.

use crate::report::{Metric, m};
use crate::servers::{Server, machine_busy_secs};
use std::time::Instant;

pub struct CpuSnap {
    mailkeep: f64,
    db: f64,
    own: f64,
    machine: f64,
    at: Instant,
}

impl CpuSnap {
    pub fn take(srv: &Server) -> CpuSnap {
        CpuSnap {
            mailkeep: srv.cpu_secs(),
            db: srv.db_cpu_secs(),
            own: crate::lmtp::own_cpu_secs(),
            machine: machine_busy_secs(),
            at: Instant::now(),
        }
    }

    /// The figures from `self` to now, named "`clients` clients: ...".
    pub fn metrics(
        &self,
        srv: &Server,
        sc: &'static str,
        clients: usize,
        sessions: u64,
    ) -> Vec<Metric> {
        let now = CpuSnap::take(srv);
        let secs = now.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let mk = now.mailkeep - self.mailkeep;
        let db = now.db - self.db;
        let own = now.own - self.own;
        let other = (now.machine - self.machine - mk - db - own).max(0.0);
        let mut out = vec![m(
            sc,
            format!("{clients} clients: Mailkeep CPU"),
            "cores",
            false,
            mk / secs,
        )];
        if srv.has_db() {
            out.push(m(
                sc,
                format!("{clients} clients: PostgreSQL CPU"),
                "cores",
                false,
                db / secs,
            ));
            out.push(m(
                sc,
                format!("{clients} clients: PostgreSQL CPU per 1000 sessions"),
                "s",
                false,
                db * 1000.0 / sessions.max(1) as f64,
            ));
        }
        out.push(m(
            sc,
            format!("{clients} clients: load generator CPU"),
            "cores",
            false,
            own / secs,
        ));
        out.push(m(
            sc,
            format!("{clients} clients: other processes' CPU"),
            "cores",
            false,
            other / secs,
        ));
        out
    }
}
