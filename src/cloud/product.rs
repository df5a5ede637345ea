//! The Alibaba Cloud products akguard calls: API versions and default endpoints.

/// One OpenAPI product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    Ram,
    Ims,
    Sts,
    ActionTrail,
    Bss,
    Kms,
    Sas,
}

impl Product {
    pub const ALL: [Product; 7] = [
        Self::Ram,
        Self::Ims,
        Self::Sts,
        Self::ActionTrail,
        Self::Bss,
        Self::Kms,
        Self::Sas,
    ];

    /// The name used in settings (`alibaba.endpoints.<name>`) and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ram => "ram",
            Self::Ims => "ims",
            Self::Sts => "sts",
            Self::ActionTrail => "actiontrail",
            Self::Bss => "bss",
            Self::Kms => "kms",
            Self::Sas => "sas",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Self::Ram => "2015-05-01",
            Self::Ims => "2019-08-15",
            Self::Sts => "2015-04-01",
            Self::ActionTrail => "2020-07-06",
            Self::Bss => "2017-12-14",
            Self::Kms => "2016-01-20",
            Self::Sas => "2018-12-03",
        }
    }

    /// The public endpoint for `region`. RAM, IMS and STS are global; BSS and Security
    /// Center have one endpoint for the China site and one for the international site.
    pub fn default_endpoint(self, region: &str) -> String {
        let china = region.starts_with("cn-");
        match self {
            Self::Ram => "https://ram.aliyuncs.com".into(),
            Self::Ims => "https://ims.aliyuncs.com".into(),
            Self::Sts => "https://sts.aliyuncs.com".into(),
            Self::ActionTrail => format!("https://actiontrail.{region}.aliyuncs.com"),
            Self::Bss if china => "https://business.aliyuncs.com".into(),
            Self::Bss => "https://business.ap-southeast-1.aliyuncs.com".into(),
            Self::Kms => format!("https://kms.{region}.aliyuncs.com"),
            Self::Sas if china => "https://tds.cn-shanghai.aliyuncs.com".into(),
            Self::Sas => "https://tds.ap-southeast-1.aliyuncs.com".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_endpoints_follow_the_region() {
        assert_eq!(
            Product::ActionTrail.default_endpoint("cn-hangzhou"),
            "https://actiontrail.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            Product::Sas.default_endpoint("cn-beijing"),
            "https://tds.cn-shanghai.aliyuncs.com"
        );
        assert_eq!(
            Product::Sas.default_endpoint("ap-northeast-1"),
            "https://tds.ap-southeast-1.aliyuncs.com"
        );
        assert_eq!(
            Product::Bss.default_endpoint("eu-central-1"),
            "https://business.ap-southeast-1.aliyuncs.com"
        );
        assert_eq!(
            Product::Ram.default_endpoint("eu-central-1"),
            "https://ram.aliyuncs.com"
        );
    }
}
