// Package ocsf writes Standin's audit events as OCSF 1.3.0 events (the
// Open Cybersecurity Schema Framework, https://schema.ocsf.io/1.3.0/), for
// the SIEMs that the audit log is streamed to. It imports only the
// standard library and the core domain package.
//
// # Classes
//
// Every Standin event type maps to one OCSF class and activity;
// type_uid is class_uid*100 + activity_id. Activity 99 (Other) carries
// the Standin word in activity_name.
//
//	Standin type            OCSF class (class_uid)      activity_id (activity_name)
//	auth.login              Authentication (3002)       1 Logon
//	auth.logout             Authentication (3002)       2 Logoff
//	impersonation.started   Authentication (3002)       1 Logon
//	impersonation.denied    Authentication (3002)       1 Logon, status Failure
//	impersonation.ended     Authentication (3002)       2 Logoff
//	impersonation.paused    Authentication (3002)       99 (Pause)
//	impersonation.resumed   Authentication (3002)       99 (Resume)
//	user.suspended          Account Change (3001)       5 Disable
//	user.renamed            Account Change (3001)       99 (Rename)
//	policy.changed          Account Change (3001)       7 Attach Policy (added), 8 Detach Policy (removed)
//	consent.granted         Account Change (3001)       7 Attach Policy
//	consent.withdrawn       Account Change (3001)       8 Detach Policy
//	action.allowed          API Activity (6003)         from the action's verb (below)
//	action.denied           API Activity (6003)         from the action's verb, status Failure
//	booking.created         API Activity (6003)         1 Create
//	booking.cancelled       API Activity (6003)         4 Delete
//	request.created         API Activity (6003)         1 Create
//	request.approved        API Activity (6003)         3 Update
//	request.denied          API Activity (6003)         3 Update, status Failure
//	request.expired         API Activity (6003)         3 Update
//	request.cancelled       API Activity (6003)         3 Update
//	field.revealed          API Activity (6003)         2 Read
//	settings.changed        API Activity (6003)         3 Update
//	sink.created            API Activity (6003)         1 Create
//	sink.changed            API Activity (6003)         3 Update
//	sink.removed            API Activity (6003)         4 Delete
//	sink.tested             API Activity (6003)         99 (Test)
//	audit.refused           API Activity (6003)         99 (Refuse), status Failure
//	alert.raised            Detection Finding (2004)    1 Create, status New
//	alert.acknowledged      Detection Finding (2004)    2 Update, status In Progress
//	any other type          API Activity (6003)         99 (the type itself)
//
// The verb of an action.allowed or action.denied is the last word of its
// action (booking.create, resource.list): list, read, get, view, check,
// export and verify read; create, add, request, start and grant
// create; update, change, rename, suspend, approve, respond, moderate
// and revoke update; cancel, delete, remove and withdraw delete. An action
// with another verb takes it from its object when that is a method and a
// path (GET reads, POST creates, PUT and PATCH update, DELETE deletes),
// and is Other (99) otherwise.
//
// # Impersonation
//
// actor.user is always the person who acted: the support agent while
// impersonating. The user whose identity was used (Standin's subject) is
// where OCSF 1.3 puts the account an activity is about:
//
//   - Authentication: user. An impersonation's start is a logon to the
//     user's account requested by the agent, as OCSF models su or
//     RunAs: actor.user the agent, user the impersonated user, logon_type
//     "Impersonation" (logon_type_id 99), session.uid the impersonation.
//   - Account Change: user, the account changed (the suspended or renamed
//     user, the one who gave or withdrew consent). A policy line grants
//     a role, so its user is the role (type "Role").
//   - API Activity has no user in 1.3: the subject is an entry of
//     resources with type "User", labelled "subject", and also
//     "impersonated" when the event happened inside an impersonation.
//   - Detection Finding: the subject is an entry of resources, as above.
//
// Inside an impersonation actor.session.uid is the impersonation's id,
// and metadata.correlation_uid is that id for every event that carries
// one (the requests too, whose id the session keeps), so a SIEM follows
// a session from its request to its end. actor.invoked_by is not used:
// OCSF 1.3 deprecates it and it names an application, not a person.
//
// # Other attributes
//
// time is the event's time in epoch milliseconds (metadata.original_time
// the same instant as Standin writes it), metadata.uid its id,
// metadata.sequence its seq, metadata.event_code its Standin type,
// status_code its outcome and status_detail its reason. status_id is
// Failure (2) for the outcomes denied, refused and failed, Unknown (0)
// for no outcome and Success (1) otherwise; in the Detection Finding it
// is the finding's status instead, as OCSF defines it there. severity_id
// is Informational (1), Low (2) for a failure and Medium (3) for an
// alert. src_endpoint.ip is the client's address (src_endpoint.name when
// it is not an address, and the product's name for an event no client
// caused), http_request.user_agent its User-Agent, api.operation the
// action (the type when there is none) and resources[0] the object (its
// name the object as written, its type the part before the first colon
// and its uid the rest up to a space: booking:<id>, resource:<id>
// <start>/<end>).
//
// Standin fields that OCSF 1.3 has no attribute for go to unmapped, with
// their Standin names: impersonation_id, project, projects, prev_hash
// and hash always; action and object in the classes without api or
// resources; the subject when its class has no place for it; action,
// actor, ip and user_agent in the Detection Finding, which has no actor
// in 1.3. An Authentication or Account Change event without a subject
// names its user "unknown", since OCSF requires one.
package ocsf
