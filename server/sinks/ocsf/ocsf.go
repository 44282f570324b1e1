package ocsf

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"standin/server/standin"
)

// SchemaVersion is the OCSF version every event declares in
// metadata.version.
const SchemaVersion = "1.3.0"

// Product names the software in metadata.product: its name, vendor and
// build version. An empty Name or Vendor is "Standin"; an empty Version
// is left out.
type Product struct{ Name, Vendor, Version string }

// OCSF 1.3.0 categories and classes this package writes.
const (
	categoryFindings    = 2
	categoryIAM         = 3
	categoryApplication = 6

	classDetectionFinding = 2004
	classAccountChange    = 3001
	classAuthentication   = 3002
	classAPIActivity      = 6003
)

var categoryNames = map[int]string{
	categoryFindings:    "Findings",
	categoryIAM:         "Identity & Access Management",
	categoryApplication: "Application Activity",
}

var classNames = map[int]string{
	classDetectionFinding: "Detection Finding",
	classAccountChange:    "Account Change",
	classAuthentication:   "Authentication",
	classAPIActivity:      "API Activity",
}

// activityOther is the activity_id of an activity the class does not
// name; activity_name then carries Standin's word for it.
const activityOther = 99

// activityNames are the captions of each class's activity_id values in
// OCSF 1.3.0 (Unknown and Other are common to all).
var activityNames = map[int]map[int]string{
	classAuthentication: {1: "Logon", 2: "Logoff", 3: "Authentication Ticket", 4: "Service Ticket Request",
		5: "Service Ticket Renew", 6: "Preauth"},
	classAccountChange: {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable",
		6: "Delete", 7: "Attach Policy", 8: "Detach Policy", 9: "Lock", 10: "MFA Factor Enable", 11: "MFA Factor Disable"},
	classAPIActivity:      {1: "Create", 2: "Read", 3: "Update", 4: "Delete"},
	classDetectionFinding: {1: "Create", 2: "Update", 3: "Close"},
}

// API Activity's activity_id values.
const (
	apiCreate = 1
	apiRead   = 2
	apiUpdate = 3
	apiDelete = 4
)

// status_id: of an activity, and of a finding (whose status_id is the
// finding's state in OCSF 1.3.0).
const (
	statusUnknown = 0
	statusSuccess = 1
	statusFailure = 2

	findingNew        = 1
	findingInProgress = 2
)

var statusNames = map[int]string{statusUnknown: "Unknown", statusSuccess: "Success", statusFailure: "Failure"}

var findingStatusNames = map[int]string{statusUnknown: "Unknown", findingNew: "New", findingInProgress: "In Progress"}

// severity_id values used here.
const (
	severityInformational = 1
	severityLow           = 2
	severityMedium        = 3
)

var severityNames = map[int]string{severityInformational: "Informational", severityLow: "Low", severityMedium: "Medium"}

// Observable type_id values of OCSF 1.3.0 used here.
const (
	observableIP       = 2
	observableUserName = 4
)

// mapping is where one Standin event type goes.
type mapping struct {
	class    int
	activity int
	// other is activity_name when activity is activityOther.
	other string
}

// mappings holds the types whose class and activity do not depend on the
// event's content; policy.changed, action.allowed and action.denied are
// decided in mappingOf.
var mappings = map[string]mapping{
	standin.EventLogin:                {classAuthentication, 1, ""},
	standin.EventLogout:               {classAuthentication, 2, ""},
	standin.EventImpersonationStarted: {classAuthentication, 1, ""},
	standin.EventImpersonationDenied:  {classAuthentication, 1, ""},
	standin.EventImpersonationEnded:   {classAuthentication, 2, ""},
	standin.EventImpersonationPaused:  {classAuthentication, activityOther, "Pause"},
	standin.EventImpersonationResumed: {classAuthentication, activityOther, "Resume"},
	standin.EventUserSuspended:        {classAccountChange, 5, ""},
	standin.EventUserRenamed:          {classAccountChange, activityOther, "Rename"},
	standin.EventConsentGranted:       {classAccountChange, 7, ""},
	standin.EventConsentWithdrawn:     {classAccountChange, 8, ""},
	standin.EventBookingCreated:       {classAPIActivity, apiCreate, ""},
	standin.EventBookingCancelled:     {classAPIActivity, apiDelete, ""},
	standin.EventRequestCreated:       {classAPIActivity, apiCreate, ""},
	standin.EventRequestApproved:      {classAPIActivity, apiUpdate, ""},
	standin.EventRequestDenied:        {classAPIActivity, apiUpdate, ""},
	standin.EventRequestExpired:       {classAPIActivity, apiUpdate, ""},
	standin.EventRequestCancelled:     {classAPIActivity, apiUpdate, ""},
	standin.EventFieldRevealed:        {classAPIActivity, apiRead, ""},
	standin.EventSettingsChanged:      {classAPIActivity, apiUpdate, ""},
	"sink.created":                    {classAPIActivity, apiCreate, ""},
	"sink.changed":                    {classAPIActivity, apiUpdate, ""},
	"sink.removed":                    {classAPIActivity, apiDelete, ""},
	"sink.tested":                     {classAPIActivity, activityOther, "Test"},
	standin.EventAuditRefused:         {classAPIActivity, activityOther, "Refuse"},
	"alert.raised":                    {classDetectionFinding, 1, ""},
	"alert.acknowledged":              {classDetectionFinding, 2, ""},
}

// verbs gives the API Activity of an action by its last word.
var verbs = map[string]int{
	"list": apiRead, "read": apiRead, "get": apiRead, "view": apiRead, "check": apiRead, "export": apiRead, "verify": apiRead,
	"create": apiCreate, "add": apiCreate, "request": apiCreate, "start": apiCreate, "grant": apiCreate,
	"update": apiUpdate, "change": apiUpdate, "rename": apiUpdate, "suspend": apiUpdate, "approve": apiUpdate,
	"respond": apiUpdate, "moderate": apiUpdate, "revoke": apiUpdate,
	"cancel": apiDelete, "delete": apiDelete, "remove": apiDelete, "withdraw": apiDelete,
}

// methods gives the API Activity of an HTTP method.
var methods = map[string]int{
	"GET": apiRead, "HEAD": apiRead, "POST": apiCreate, "PUT": apiUpdate, "PATCH": apiUpdate, "DELETE": apiDelete,
}

func mappingOf(e *standin.Event) mapping {
	if m, ok := mappings[e.Type]; ok {
		return m
	}
	switch e.Type {
	case standin.EventPolicyChanged:
		switch e.Outcome {
		case "added":
			return mapping{classAccountChange, 7, ""}
		case "removed":
			return mapping{classAccountChange, 8, ""}
		}
		return mapping{classAccountChange, activityOther, "Policy Change"}
	case standin.EventActionAllowed, standin.EventActionDenied:
		return mapping{classAPIActivity, actionActivity(e.Action, e.Object), e.Action}
	}
	if strings.HasPrefix(e.Type, "alert.") {
		return mapping{classDetectionFinding, activityOther, e.Type}
	}
	return mapping{classAPIActivity, activityOther, e.Type}
}

// actionActivity is the API Activity of a decided action: by its verb,
// or by the HTTP method its object names.
func actionActivity(action, object string) int {
	verb := action[strings.LastIndexByte(action, '.')+1:]
	if a, ok := verbs[verb]; ok {
		return a
	}
	if method, _, ok := httpObject(object); ok {
		return methods[method]
	}
	return activityOther
}

// httpObject splits an object written as a method and a path ("GET
// /api/v1/resources").
func httpObject(object string) (method, path string, ok bool) {
	method, path, found := strings.Cut(object, " ")
	if _, known := methods[method]; !known || !found || !strings.HasPrefix(path, "/") {
		return "", "", false
	}
	return method, path, true
}

// statusOf is the status_id of an activity from its outcome.
func statusOf(outcome string) int {
	switch outcome {
	case "":
		return statusUnknown
	case "denied", "refused", "failed":
		return statusFailure
	}
	return statusSuccess
}

// The OCSF objects written, each with the attributes used here.

type event struct {
	ActivityID     int            `json:"activity_id"`
	ActivityName   string         `json:"activity_name"`
	CategoryUID    int            `json:"category_uid"`
	CategoryName   string         `json:"category_name"`
	ClassUID       int            `json:"class_uid"`
	ClassName      string         `json:"class_name"`
	TypeUID        int            `json:"type_uid"`
	TypeName       string         `json:"type_name"`
	Time           int64          `json:"time"`
	TimezoneOffset int            `json:"timezone_offset"`
	SeverityID     int            `json:"severity_id"`
	Severity       string         `json:"severity"`
	StatusID       int            `json:"status_id"`
	Status         string         `json:"status"`
	StatusCode     string         `json:"status_code,omitempty"`
	StatusDetail   string         `json:"status_detail,omitempty"`
	Message        string         `json:"message"`
	Metadata       metadata       `json:"metadata"`
	Actor          *actor         `json:"actor,omitempty"`
	User           *user          `json:"user,omitempty"`
	UserResult     *user          `json:"user_result,omitempty"`
	Policy         *policy        `json:"policy,omitempty"`
	Session        *session       `json:"session,omitempty"`
	Service        *service       `json:"service,omitempty"`
	LogonTypeID    int            `json:"logon_type_id,omitempty"`
	LogonType      string         `json:"logon_type,omitempty"`
	API            *api           `json:"api,omitempty"`
	SrcEndpoint    *endpoint      `json:"src_endpoint,omitempty"`
	HTTPRequest    *httpRequest   `json:"http_request,omitempty"`
	Resources      []resource     `json:"resources,omitempty"`
	FindingInfo    *findingInfo   `json:"finding_info,omitempty"`
	Comment        string         `json:"comment,omitempty"`
	Observables    []observable   `json:"observables,omitempty"`
	Unmapped       unmappedFields `json:"unmapped"`
}

type metadata struct {
	Version        string  `json:"version"`
	Product        product `json:"product"`
	UID            string  `json:"uid,omitempty"`
	Sequence       int64   `json:"sequence"`
	LogName        string  `json:"log_name"`
	LogProvider    string  `json:"log_provider"`
	EventCode      string  `json:"event_code,omitempty"`
	CorrelationUID string  `json:"correlation_uid,omitempty"`
	OriginalTime   string  `json:"original_time,omitempty"`
}

type product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

type actor struct {
	User    *user    `json:"user,omitempty"`
	Session *session `json:"session,omitempty"`
	AppName string   `json:"app_name,omitempty"`
}

type user struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name,omitempty"`
	TypeID int    `json:"type_id,omitempty"`
	Type   string `json:"type,omitempty"`
}

type session struct {
	UID string `json:"uid"`
}

type service struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

type policy struct {
	UID  string            `json:"uid,omitempty"`
	Name string            `json:"name"`
	Desc string            `json:"desc,omitempty"`
	Data map[string]string `json:"data,omitempty"`
}

type api struct {
	Operation string `json:"operation"`
}

type endpoint struct {
	IP   string `json:"ip,omitempty"`
	Name string `json:"name,omitempty"`
}

type httpRequest struct {
	HTTPMethod string `json:"http_method,omitempty"`
	URL        *url   `json:"url,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
}

type url struct {
	Path string `json:"path"`
}

type resource struct {
	UID    string   `json:"uid,omitempty"`
	Name   string   `json:"name,omitempty"`
	Type   string   `json:"type,omitempty"`
	Labels []string `json:"labels,omitempty"`
}

type findingInfo struct {
	UID         string   `json:"uid"`
	Title       string   `json:"title"`
	Desc        string   `json:"desc,omitempty"`
	Types       []string `json:"types"`
	CreatedTime int64    `json:"created_time,omitempty"`
}

type observable struct {
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
	Value  string `json:"value"`
}

// unmappedFields holds, under their Standin names, the fields OCSF 1.3
// has no attribute for in the event's class.
type unmappedFields struct {
	ImpersonationID string       `json:"impersonation_id,omitempty"`
	Project         string       `json:"project,omitempty"`
	Projects        []string     `json:"projects"`
	PrevHash        string       `json:"prev_hash"`
	Hash            string       `json:"hash"`
	Action          string       `json:"action,omitempty"`
	Object          string       `json:"object,omitempty"`
	Actor           *standinUser `json:"actor,omitempty"`
	Subject         *standinUser `json:"subject,omitempty"`
	IP              string       `json:"ip,omitempty"`
	UserAgent       string       `json:"user_agent,omitempty"`
}

type standinUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Encode returns one OCSF 1.3 event (a JSON object, no trailing newline)
// for e, the product named p. Text that is not valid UTF-8 is written
// with U+FFFD in place of its invalid bytes, as encoding/json does. The
// only error is for a nil event.
func Encode(e *standin.Event, p Product) ([]byte, error) {
	if e == nil {
		return nil, errors.New("ocsf: no event to encode")
	}
	if p.Name == "" {
		p.Name = "Standin"
	}
	if p.Vendor == "" {
		p.Vendor = "Standin"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// A SIEM reads this, not a browser: <, > and & stay as they are.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(build(e, p)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// build maps e to its OCSF event.
func build(e *standin.Event, p Product) *event {
	m := mappingOf(e)
	category := m.class / 1000
	activityName := activityNames[m.class][m.activity]
	typeActivity := activityName
	if m.activity == activityOther {
		activityName, typeActivity = m.other, "Other"
		for _, name := range []string{e.Type, "Other"} {
			if activityName == "" {
				activityName = name
			}
		}
	}
	o := &event{
		ActivityID:   m.activity,
		ActivityName: activityName,
		CategoryUID:  category,
		CategoryName: categoryNames[category],
		ClassUID:     m.class,
		ClassName:    classNames[m.class],
		TypeUID:      m.class*100 + m.activity,
		TypeName:     classNames[m.class] + ": " + typeActivity,
		Time:         e.Time.UnixMilli(),
		StatusCode:   e.Outcome,
		StatusDetail: e.Reason,
		Message:      message(e),
		Metadata: metadata{
			Version:        SchemaVersion,
			Product:        product{Name: p.Name, VendorName: p.Vendor, Version: p.Version},
			UID:            e.ID,
			Sequence:       e.Seq,
			LogName:        "audit",
			LogProvider:    p.Name,
			EventCode:      e.Type,
			CorrelationUID: e.ImpersonationID,
		},
		Unmapped: unmappedFields{
			ImpersonationID: e.ImpersonationID,
			Project:         e.Project,
			Projects:        e.Projects,
			PrevHash:        e.PrevHash,
			Hash:            e.Hash,
		},
	}
	if o.Unmapped.Projects == nil {
		o.Unmapped.Projects = []string{}
	}
	if !e.Time.IsZero() {
		o.Metadata.OriginalTime = e.Time.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	o.StatusID = statusOf(e.Outcome)
	o.Status = statusNames[o.StatusID]
	o.SeverityID = severityInformational
	if o.StatusID == statusFailure {
		o.SeverityID = severityLow
	}

	switch m.class {
	case classAuthentication:
		authentication(o, e, p)
	case classAccountChange:
		accountChange(o, e, p)
	case classDetectionFinding:
		detectionFinding(o, e)
	default:
		apiActivity(o, e, p)
	}
	o.Severity = severityNames[o.SeverityID]
	o.Observables = observables(o)
	return o
}

// inSession says whether e happened inside an impersonation, rather than
// in a request to start one (whose id the session keeps).
func inSession(e *standin.Event) bool {
	return e.ImpersonationID != "" && !strings.HasPrefix(e.Type, "request.")
}

// actorOf is the person who acted, with the impersonation they acted in;
// an event no person caused is Standin's own.
func actorOf(e *standin.Event, p Product) *actor {
	a := &actor{}
	if e.Actor.ID != "" || e.Actor.Name != "" {
		a.User = &user{UID: e.Actor.ID, Name: e.Actor.Name}
	} else {
		a.AppName = p.Name
	}
	if inSession(e) {
		a.Session = &session{UID: e.ImpersonationID}
	}
	return a
}

// origin fills where the request came from.
func origin(o *event, e *standin.Event, p Product) {
	switch {
	case e.IP == "":
		// No client: Standin did it itself (an expiry, a sweep).
		o.SrcEndpoint = &endpoint{Name: p.Name}
	case validIP(e.IP):
		o.SrcEndpoint = &endpoint{IP: e.IP}
	default:
		o.SrcEndpoint = &endpoint{Name: e.IP}
	}
	if e.UserAgent != "" {
		o.HTTPRequest = &httpRequest{UserAgent: e.UserAgent}
	}
}

func validIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// subjectIsActor says whether the event's subject is its actor, who then
// needs no second place.
func subjectIsActor(e *standin.Event) bool {
	return e.Subject == e.Actor
}

func subjectUser(e *standin.Event) *user {
	if e.Subject.ID == "" && e.Subject.Name == "" {
		return &user{Name: "unknown"}
	}
	return &user{UID: e.Subject.ID, Name: e.Subject.Name}
}

func authentication(o *event, e *standin.Event, p Product) {
	o.Actor = actorOf(e, p)
	o.User = subjectUser(e)
	o.Service = &service{Name: p.Name, Version: p.Version}
	if strings.HasPrefix(e.Type, "impersonation.") {
		o.LogonTypeID, o.LogonType = activityOther, "Impersonation"
		if e.ImpersonationID != "" {
			o.Session = &session{UID: e.ImpersonationID}
		}
	}
	origin(o, e, p)
	o.Unmapped.Action, o.Unmapped.Object = e.Action, e.Object
}

// policyLine reads a policy line "p, role, domain, object, action".
func policyLine(line string) (map[string]string, bool) {
	parts := strings.Split(line, ", ")
	if len(parts) != 5 || parts[0] != "p" {
		return nil, false
	}
	return map[string]string{"role": parts[1], "domain": parts[2], "object": parts[3], "action": parts[4]}, true
}

var renamed = regexp.MustCompile(`^Renamed from ("(?:[^"\\]|\\.)*") to ("(?:[^"\\]|\\.)*")\.$`)

func accountChange(o *event, e *standin.Event, p Product) {
	o.Actor = actorOf(e, p)
	o.User = subjectUser(e)
	switch e.Type {
	case standin.EventPolicyChanged:
		// A policy line grants a role: the account it changes is the role's.
		o.Policy = &policy{Name: e.Object}
		if data, ok := policyLine(e.Object); ok {
			o.Policy.Data = data
			o.User = &user{Name: data["role"], TypeID: 99, Type: "Role"}
		}
		if !subjectIsActor(e) {
			o.Unmapped.Subject = &standinUser{ID: e.Subject.ID, Name: e.Subject.Name}
		}
	case standin.EventConsentGranted, standin.EventConsentWithdrawn:
		o.Policy = &policy{Name: "Impersonation consent", Desc: e.Reason}
		if id, ok := strings.CutPrefix(e.Object, "grant:"); ok {
			o.Policy.UID = id
		}
	case standin.EventUserRenamed:
		if m := renamed.FindStringSubmatch(e.Reason); m != nil {
			to, err := strconv.Unquote(m[2])
			if err == nil {
				o.UserResult = &user{UID: e.Subject.ID, Name: to}
			}
		}
	}
	origin(o, e, p)
	o.Unmapped.Action, o.Unmapped.Object = e.Action, e.Object
}

// objectResource is the resource an object names: "booking:<id>" is a
// booking with that uid, "resource:<id> <start>/<end>" a resource with
// that uid; an object of another form is its own uid. The name is the
// object as written.
func objectResource(object string) resource {
	r := resource{Name: object, UID: object}
	if typ, rest, ok := strings.Cut(object, ":"); ok && typ != "" && !strings.Contains(typ, " ") {
		r.Type = typ
		r.UID, _, _ = strings.Cut(rest, " ")
	}
	return r
}

// resourcesOf lists what the event touched: its object, then its
// subject when that is not the actor.
func resourcesOf(e *standin.Event) []resource {
	var rs []resource
	if e.Object != "" {
		rs = append(rs, objectResource(e.Object))
	}
	if !subjectIsActor(e) && (e.Subject.ID != "" || e.Subject.Name != "") {
		labels := []string{"subject"}
		if inSession(e) {
			labels = append(labels, "impersonated")
		}
		rs = append(rs, resource{UID: e.Subject.ID, Name: e.Subject.Name, Type: "User", Labels: labels})
	}
	return rs
}

func apiActivity(o *event, e *standin.Event, p Product) {
	o.Actor = actorOf(e, p)
	operation := e.Action
	if operation == "" {
		operation = e.Type
	}
	o.API = &api{Operation: operation}
	origin(o, e, p)
	if method, path, ok := httpObject(e.Object); ok {
		if o.HTTPRequest == nil {
			o.HTTPRequest = &httpRequest{}
		}
		o.HTTPRequest.HTTPMethod, o.HTTPRequest.URL = method, &url{Path: path}
	}
	o.Resources = resourcesOf(e)
}

func detectionFinding(o *event, e *standin.Event) {
	o.SeverityID = severityMedium
	switch e.Type {
	case "alert.raised":
		o.StatusID = findingNew
	case "alert.acknowledged":
		o.StatusID = findingInProgress
	default:
		o.StatusID = statusUnknown
	}
	o.Status = findingStatusNames[o.StatusID]
	uid := e.Object
	if uid == "" {
		uid = e.ID
	}
	title := "Standin alert " + uid
	if e.Type == "alert.raised" && e.Reason != "" {
		title = e.Reason
	} else {
		o.Comment = e.Reason
	}
	o.FindingInfo = &findingInfo{UID: uid, Title: title, Desc: o.Message, Types: []string{"Standin alert"}}
	if e.Type == "alert.raised" {
		o.FindingInfo.CreatedTime = o.Time
	}
	o.Resources = resourcesOf(e)
	// OCSF 1.3 findings have no actor, source or request outside the
	// host profile: Standin's stay in unmapped.
	o.Unmapped.Action = e.Action
	o.Unmapped.Actor = &standinUser{ID: e.Actor.ID, Name: e.Actor.Name}
	o.Unmapped.IP, o.Unmapped.UserAgent = e.IP, e.UserAgent
}

// observables lists the values a SIEM pivots on.
func observables(o *event) []observable {
	var obs []observable
	if o.Actor != nil && o.Actor.User != nil && o.Actor.User.Name != "" {
		obs = append(obs, observable{Name: "actor.user.name", TypeID: observableUserName, Type: "User Name", Value: o.Actor.User.Name})
	}
	if o.User != nil && o.User.UID != "" && o.User.Name != "" && (o.Actor == nil || o.Actor.User == nil || *o.Actor.User != *o.User) {
		obs = append(obs, observable{Name: "user.name", TypeID: observableUserName, Type: "User Name", Value: o.User.Name})
	}
	if o.SrcEndpoint != nil && o.SrcEndpoint.IP != "" {
		obs = append(obs, observable{Name: "src_endpoint.ip", TypeID: observableIP, Type: "IP Address", Value: o.SrcEndpoint.IP})
	}
	return obs
}
